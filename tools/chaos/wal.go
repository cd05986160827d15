package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/tools/invariant"
)

// WALResult is what the Connect outage measured.
type WALResult struct {
	Ran       bool
	Outage    time.Duration
	MaxKeep   int64            // max_slot_wal_keep_size
	Retained  map[string]int64 // peak WAL retained per slot during the outage (bytes)
	PeakLag   map[string]int64 // peak slot lag (bytes)
	WithinCap bool
	// IngestRate is events/s reaching Kafka before the outage (the steady state), CatchUpRate the
	// events/s reaching Kafka from restart until the slots' lag was small again.
	IngestRate  float64
	CatchUpRate float64
	CatchUp     time.Duration
	Backlog     int64 // events that reached Kafka during catch-up
	StoppedAt   time.Time
	RestartedAt time.Time
	LagDrain    float64
	Err         string
}

// endOffsets sums the newest offsets of the saga topics: how many events Kafka holds (0 when
// Kafka cannot say; the figures are then off, not the run).
func (r *Runner) endOffsets() int64 {
	_ = r.kafka.RefreshMetadata(invariant.SagaTopics...)
	hwm, err := invariant.HighWaterMarks(r.kafka, invariant.SagaTopics)
	if err != nil {
		r.logf("wal: %v", err)
		return 0
	}
	var sum int64
	for _, parts := range hwm {
		for _, o := range parts {
			sum += o
		}
	}
	return sum
}

// walOutage stops Connect under load, samples each slot's retained WAL, restarts Connect and
// measures how fast the backlog drains compared with the ingest rate.
func (r *Runner) walOutage(ctx context.Context) (WALResult, error) {
	w := WALResult{Ran: true, Outage: r.cfg.WALOutage, MaxKeep: r.cfg.MaxSlotWALKeep,
		Retained: map[string]int64{}, PeakLag: map[string]int64{}}
	pg := r.cfg.Endpoints.PGAdminURL
	start, t0 := r.endOffsets(), time.Now()
	time.Sleep(5 * time.Second)
	w.IngestRate = float64(r.endOffsets()-start) / time.Since(t0).Seconds()

	r.logf("wal: stopping Connect for %s under load", w.Outage)
	w.StoppedAt = time.Now()
	if err := r.cfg.Stack.Stop(ctx, "connect"); err != nil {
		return w, err
	}
	until := time.Now().Add(w.Outage)
	for time.Now().Before(until) {
		r.sampleSlots(ctx, pg, &w)
		time.Sleep(2 * time.Second)
	}
	r.sampleSlots(ctx, pg, &w)
	var lagAtRestart int64
	for _, l := range w.PeakLag {
		lagAtRestart += l
	}
	from, err := invariant.HighWaterMarks(r.kafka, invariant.SagaTopics)
	if err != nil {
		return w, err
	}
	before, restart := r.endOffsets(), time.Now()
	w.RestartedAt = restart
	if err := r.cfg.Stack.Start(ctx, "connect"); err != nil {
		return w, err
	}
	// Caught up: every saga topic has received an event written after the restart, so the events
	// written before it (the backlog; WAL order is commit order) are all on Kafka. The slots'
	// lag cannot tell this: their confirmed position moves only with Connect's offset flushes.
	if err := r.awaitNewerThan(ctx, from, restart, 3*time.Minute); err != nil {
		w.Err = err.Error()
	}
	w.CatchUp = time.Since(restart)
	w.Backlog = r.endOffsets() - before
	w.CatchUpRate = float64(w.Backlog) / w.CatchUp.Seconds()
	w.LagDrain = float64(lagAtRestart) / w.CatchUp.Seconds()
	w.WithinCap = true
	for _, v := range w.Retained {
		if w.MaxKeep > 0 && v > w.MaxKeep {
			w.WithinCap = false
		}
	}
	r.logf("wal: retained peak %v (cap %d), catch-up %s: %d events at %.0f/s (ingest %.0f/s)",
		w.Retained, w.MaxKeep, w.CatchUp.Round(time.Millisecond), w.Backlog, w.CatchUpRate, w.IngestRate)
	return w, nil
}

func (r *Runner) sampleSlots(ctx context.Context, pg string, w *WALResult) {
	slots, err := invariant.Slots(ctx, pg)
	if err != nil {
		w.Err = err.Error()
		return
	}
	for _, s := range slots {
		w.Retained[s.Name] = max(w.Retained[s.Name], s.Retained)
		w.PeakLag[s.Name] = max(w.PeakLag[s.Name], s.Lag)
		if s.Status == "lost" || s.Status == "unreserved" {
			w.Err = fmt.Sprintf("slot %s is %s", s.Name, s.Status)
		}
	}
}

// awaitNewerThan reads the saga topics from the offsets in from until each topic has delivered
// an event whose envelope occurredAt is after t, or timeout passes.
func (r *Runner) awaitNewerThan(ctx context.Context, from map[string]map[int32]int64, t time.Time, timeout time.Duration) error {
	consumer, err := sarama.NewConsumerFromClient(r.kafka)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var readers sync.WaitGroup
	defer readers.Wait() // before consumer.Close: every partition consumer closed first
	defer cancel()
	seen := make(chan string, 64)
	for topic, parts := range from {
		for p, off := range parts {
			pc, err := consumer.ConsumePartition(topic, p, off)
			if err != nil {
				return fmt.Errorf("consume %s[%d]: %w", topic, p, err)
			}
			readers.Go(func() {
				defer pc.Close()
				for {
					select {
					case <-ctx.Done():
						return
					case m := <-pc.Messages():
						var env struct {
							OccurredAt time.Time `json:"occurredAt"`
						}
						if json.Unmarshal(m.Value, &env) == nil && env.OccurredAt.After(t) {
							select {
							case seen <- topic:
							case <-ctx.Done():
							}
							return
						}
					}
				}
			})
		}
	}
	waiting := map[string]bool{}
	for topic := range from {
		waiting[topic] = true
	}
	for len(waiting) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no event newer than the restart on %v after %s", slices.Sorted(maps.Keys(waiting)), timeout)
		case topic := <-seen:
			delete(waiting, topic)
		}
	}
	return nil
}
