package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"outboxsaga.dev/tools/invariant"
)

// notificationGroup is the consumer group of the notification service.
const notificationGroup = "notification-service"

// webhookOutage stops the webhook sink under load for cfg.WebhookOutage and starts it again. The
// notification service must hold every notification meanwhile (retrying: an outage is never
// poison, so it dead-letters nothing) and send them once the sink is back; invariant 6, checked at
// the end of the run, proves that none was lost. The phase measures the backlog the outage left
// in the notification service's group and how long it took to drain.
func (r *Runner) webhookOutage(ctx context.Context) PhaseResult {
	res := PhaseResult{Ran: true}
	deadBefore, err := r.deadLettersWithPrefix(ctx, "notification", "")
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	steady := r.notificationLag()
	r.logf("webhook outage: stop the sink for %s under load (notification lag %d)", r.cfg.WebhookOutage, steady)
	if err := r.cfg.Stack.Stop(ctx, "webhooksink"); err != nil {
		return PhaseResult{Ran: true, Problems: append(res.Problems, err.Error())}
	}
	time.Sleep(r.cfg.WebhookOutage)
	backlog := r.notificationLag()
	restarted := time.Now() // the drain is timed from here: make up's own checks take a while
	if err := r.cfg.Stack.Start(ctx, "webhooksink"); err != nil {
		return PhaseResult{Ran: true, Problems: append(res.Problems, err.Error())}
	}
	up := time.Since(restarted)
	// Drained: the lag is back to what load alone keeps in flight.
	threshold := max(2*steady, 20)
	drain := time.Duration(-1)
	for time.Since(restarted) < 3*time.Minute && ctx.Err() == nil {
		if lag := r.notificationLag(); lag >= 0 && lag <= threshold {
			drain = time.Since(restarted)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if drain < 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("the notification backlog (%d records) did not drain within 3 minutes of the sink's restart", backlog))
	}
	deadAfter, err := r.deadLettersWithPrefix(ctx, "notification", "")
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	if deadAfter > deadBefore {
		res.Problems = append(res.Problems, fmt.Sprintf("the notification service dead-lettered %d records during the outage (an outage is never poison)", deadAfter-deadBefore))
	}
	res.Summary = fmt.Sprintf("sink stopped for %s under load; the notification group's lag went from %d to %d records and drained to ≤ %d within %s of make up (which took %s to bring the sink back); %d new dead letters",
		r.cfg.WebhookOutage, steady, backlog, threshold, drain.Round(time.Millisecond), up.Round(time.Millisecond), deadAfter-deadBefore)
	r.logf("webhook outage: %s", res.Summary)
	return res
}

// notificationLag is the notification service's group lag (-1 when Kafka cannot say).
func (r *Runner) notificationLag() int64 {
	lag, err := invariant.GroupLag(r.kafka)
	if err != nil {
		r.logf("webhook outage: %v", err)
		return -1
	}
	return lag[notificationGroup]
}

// checkAlerts waits until the webhook sink holds, for each poison key, one DeadLettered alert per
// service that dead-lettered the record (want), and returns how many it found.
func (r *Runner) checkAlerts(ctx context.Context, want map[string]int, res *PhaseResult) int {
	got := map[string]int{}
	deadline := time.Now().Add(time.Minute)
	for {
		for _, key := range slices.Sorted(maps.Keys(want)) {
			rs, err := r.cfg.Endpoints.Received(ctx, key)
			if err != nil {
				res.Problems = append(res.Problems, err.Error())
				return 0
			}
			got[key] = 0
			for _, rc := range rs {
				if rc.Body.Kind == "alert" && rc.Body.Event == "DeadLettered" {
					got[key]++
				}
			}
		}
		if maps.Equal(got, want) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	total := 0
	for _, key := range slices.Sorted(maps.Keys(want)) {
		total += got[key]
		if got[key] != want[key] {
			res.Problems = append(res.Problems, fmt.Sprintf("poison %s: %d alerts at the webhook, want %d (one per dead letter)", key, got[key], want[key]))
		}
	}
	return total
}
