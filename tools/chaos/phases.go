package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/load"
)

var client = &http.Client{Timeout: 5 * time.Second}

// send makes one request and returns status and body (status 0 on a connection error).
func send(ctx context.Context, method, url, body string, headers map[string]string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// probe places one tok_ok order and waits until it is COMPLETED: the pipeline works end to end.
func (r *Runner) probe(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o := load.Order{IdempotencyKey: uuid.NewString(), SKU: r.prefix + "-OK-0", Qty: 1, Amount: 1000, Token: "tok_ok"}
		body := fmt.Sprintf(`{"customerId":"U-probe","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":%q,"qty":1,"unitPrice":1000}]}`, o.SKU)
		o.Customer = "U-probe"
		var id string
		for id == "" && time.Now().Before(deadline) {
			code, raw := send(ctx, http.MethodPost, r.cfg.Endpoints.OrderURL+"/orders", body, map[string]string{"Idempotency-Key": o.IdempotencyKey, "Authorization": r.customers.MustBearer(o.Customer)})
			var created struct {
				OrderID string `json:"orderId"`
			}
			if code == http.StatusAccepted && json.Unmarshal(raw, &created) == nil {
				id = created.OrderID
				continue
			}
			time.Sleep(200 * time.Millisecond)
		}
		if id == "" {
			break
		}
		o.ID, o.AcceptedAt = id, time.Now()
		r.mu.Lock()
		r.probes = append(r.probes, o)
		r.mu.Unlock()
		for time.Now().Before(deadline) {
			v, err := r.cfg.Endpoints.Order(ctx, id)
			if err == nil && v.Status == "COMPLETED" {
				return nil
			}
			if err == nil && v.Status == "CANCELED" {
				break // e.g. TIMEOUT while a component was down: try a new probe
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return fmt.Errorf("no probe order completed within %s", timeout)
}

// replay resets every consumer group to the earliest offset, one service at a time (stop, reset,
// start), and checks that the state of every order, SKU and charge is unchanged afterwards.
func (r *Runner) replay(ctx context.Context, rec *load.Record) PhaseResult {
	res := PhaseResult{Ran: true}
	// A violation still open now would be repaired by the replay and hidden from the final check
	// (as dead-lettered events once were): it is a problem of the run, not only a log line.
	if err := r.checker.AwaitInvariants(ctx, rec, 2*time.Minute); err != nil {
		res.Problems = append(res.Problems, "before replay: "+err.Error())
		r.logf("replay: %v (comparing anyway)", err)
	}
	before, err := r.checker.SettledSnapshot(ctx, rec, 3*time.Second, 2*time.Minute)
	if err != nil {
		return PhaseResult{Ran: true, Problems: append(res.Problems, "before replay: "+err.Error())}
	}
	var replayed int64
	for _, svc := range Services {
		group := svc + "-service"
		r.logf("replay: stop %s, reset %s to the earliest offsets, start", svc, group)
		if err := r.cfg.Stack.Stop(ctx, svc); err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		n, err := r.resetGroup(group, invariant.Groups[group])
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		replayed += n
		if err := r.cfg.Stack.Start(ctx, svc); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
	}
	if err := r.checker.Quiesce(ctx, rec, 3*time.Minute); err != nil {
		res.Problems = append(res.Problems, "after replay: "+err.Error())
	}
	diffs, ok := r.settledDiff(ctx, rec, before, "replay", &res)
	if !ok {
		return res
	}
	res.Summary = fmt.Sprintf("%d groups reset to the earliest offset; %d records redelivered; %d orders, %d SKUs compared before/after: %d differences",
		len(Services), replayed, len(before.Orders), len(before.Stock), diffs)
	r.logf("replay: %s", res.Summary)
	return res
}

// resetGroup moves group's committed offsets on topics back to the oldest offsets and returns how
// many records that puts back in front of the group.
func (r *Runner) resetGroup(group string, topics []string) (int64, error) {
	om, err := sarama.NewOffsetManagerFromClient(group, r.kafka)
	if err != nil {
		return 0, fmt.Errorf("reset group %s: %w", group, err)
	}
	defer om.Close()
	var moved int64
	for _, t := range topics {
		parts, err := r.kafka.Partitions(t)
		if err != nil {
			return moved, fmt.Errorf("reset group %s: partitions of %s: %w", group, t, err)
		}
		for _, p := range parts {
			oldest, err := r.kafka.GetOffset(t, p, sarama.OffsetOldest)
			if err != nil {
				return moved, fmt.Errorf("reset group %s: oldest %s[%d]: %w", group, t, p, err)
			}
			pom, err := om.ManagePartition(t, p)
			if err != nil {
				return moved, fmt.Errorf("reset group %s: %s[%d]: %w", group, t, p, err)
			}
			cur, _ := pom.NextOffset()
			if cur > oldest {
				moved += cur - oldest
			}
			pom.ResetOffset(oldest, "chaos replay")
			if err := pom.Close(); err != nil {
				return moved, fmt.Errorf("reset group %s: close %s[%d]: %w", group, t, p, err)
			}
		}
	}
	om.Commit()
	return moved, nil
}

// poisonTargets says which services consume each saga topic (and so dead-letter its poison).
func poisonTargets() map[string][]string {
	out := map[string][]string{}
	for _, svc := range Services {
		for _, topic := range invariant.Groups[svc+"-service"] {
			if slices.Contains(invariant.SagaTopics, topic) {
				out[topic] = append(out[topic], svc)
			}
		}
	}
	return out
}

// poison writes poison records (not JSON; an envelope that breaks its schema; an unknown event
// type) and duplicates of real records to each topic, then checks that each poison record is a
// dead letter in every consuming service and that no order, SKU or charge changed.
func (r *Runner) poison(ctx context.Context, rec *load.Record) PhaseResult {
	res := PhaseResult{Ran: true}
	before, err := r.checker.TakeSnapshot(ctx, rec)
	if err != nil {
		return PhaseResult{Ran: true, Problems: []string{err.Error()}}
	}
	run := uuid.NewString()[:8]
	perTopic := 3
	if r.cfg.Short {
		perTopic = 1
	}
	var msgs []*sarama.ProducerMessage
	want := map[string]int{}   // service → poison records it must dead-letter
	alerts := map[string]int{} // poison key → alerts the operators must get: one per dead letter
	for topic, consumers := range poisonTargets() {
		for i := range perTopic {
			key := fmt.Sprintf("poison-%s-%s-%d", run, topic, i)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(poisonValue(i, key))})
			for _, c := range consumers {
				want[c]++
			}
			alerts[key] = len(consumers)
		}
	}
	dups, err := r.duplicates(ctx, rec, 10*perTopic)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	msgs = append(msgs, dups...)
	p, err := sarama.NewSyncProducerFromClient(r.kafka)
	if err != nil {
		return PhaseResult{Ran: true, Problems: append(res.Problems, err.Error())}
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		return PhaseResult{Ran: true, Problems: append(res.Problems, fmt.Sprintf("produce poison: %v", err))}
	}
	r.logf("poison: wrote %d poison records and %d duplicates", len(msgs)-len(dups), len(dups))
	if err := r.checker.Quiesce(ctx, rec, 2*time.Minute); err != nil {
		res.Problems = append(res.Problems, "after poison: "+err.Error())
	}
	got := map[string]int{}
	for svc := range want {
		n, err := r.deadLettersWithPrefix(ctx, svc, "poison-"+run)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		got[svc] = n
		if n != want[svc] {
			res.Problems = append(res.Problems, fmt.Sprintf("%s holds %d of its %d poison records as dead letters", svc, n, want[svc]))
		}
	}
	alerted := r.checkAlerts(ctx, alerts, &res)
	diffs, ok := r.settledDiff(ctx, rec, before, "poison", &res)
	if !ok {
		return res
	}
	res.Summary = fmt.Sprintf("%d poison records (3 kinds) and %d duplicates of real records; dead letters found %v (expected %v); %d alerts at the webhook, one per dead letter; %d state differences",
		len(msgs)-len(dups), len(dups), got, want, alerted, diffs)
	r.logf("poison: %s", res.Summary)
	return res
}

// settledDiff waits for a settled state after phase and adds to res every difference from
// before (at most 20); ok is false when no settled state came.
func (r *Runner) settledDiff(ctx context.Context, rec *load.Record, before *invariant.Snapshot, phase string, res *PhaseResult) (diffs int, ok bool) {
	after, err := r.checker.SettledSnapshot(ctx, rec, 3*time.Second, 2*time.Minute)
	if err != nil {
		res.Problems = append(res.Problems, "after "+phase+": "+err.Error())
		return 0, false
	}
	diff := before.Diff(after)
	res.Problems = append(res.Problems, limit(diff, 20)...)
	return len(diff), true
}

// poisonValue is a record no producer of ours writes: not JSON, a schema violation, an unknown type.
func poisonValue(i int, key string) []byte {
	switch i % 3 {
	case 0:
		return []byte("this is not JSON " + key)
	case 1:
		return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"OrderCreated","eventVersion":1,"aggregateType":"order","aggregateId":%q,"data":{"orderId":42}}`, uuid.NewString(), key))
	default:
		return []byte(fmt.Sprintf(`{"eventId":%q,"eventType":"OrderTeleported","eventVersion":9,"aggregateType":"order","aggregateId":%q,"occurredAt":"2026-01-01T00:00:00Z","traceId":"0af7651916cd43dd8448eb211c80319c","idempotencyKey":"x","data":{}}`, uuid.NewString(), key))
	}
}

// duplicates returns copies (same key, headers and value, so the same event id) of up to n real
// records of the run's orders.
func (r *Runner) duplicates(ctx context.Context, rec *load.Record, n int) ([]*sarama.ProducerMessage, error) {
	ours := map[string]bool{}
	for _, o := range rec.Orders {
		ours[o.ID] = true
	}
	consumer, err := sarama.NewConsumerFromClient(r.kafka)
	if err != nil {
		return nil, fmt.Errorf("duplicates: %w", err)
	}
	defer consumer.Close()
	var out []*sarama.ProducerMessage
	for _, topic := range invariant.SagaTopics {
		parts, err := r.kafka.Partitions(topic)
		if err != nil {
			return out, fmt.Errorf("duplicates: %w", err)
		}
		for _, p := range parts {
			newest, err := r.kafka.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil || newest == 0 {
				continue
			}
			pc, err := consumer.ConsumePartition(topic, p, max(newest-200, 0))
			if err != nil {
				continue
			}
			timeout := time.After(5 * time.Second)
		read:
			for len(out) < n {
				select {
				case m := <-pc.Messages():
					if ours[string(m.Key)] && len(out) < n {
						hs := make([]sarama.RecordHeader, 0, len(m.Headers))
						for _, h := range m.Headers {
							hs = append(hs, *h)
						}
						out = append(out, &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value), Headers: hs})
					}
					if m.Offset >= newest-1 {
						break read
					}
				case <-timeout:
					break read
				case <-ctx.Done():
					break read
				}
			}
			pc.Close()
			if len(out) >= n {
				return out, nil
			}
		}
	}
	return out, nil
}

// deadLettersWithPrefix counts a service's dead letters whose key starts with prefix.
func (r *Runner) deadLettersWithPrefix(ctx context.Context, svc, prefix string) (int, error) {
	dls, err := r.cfg.Endpoints.DeadLetters(ctx, r.cfg.Endpoints.ServiceURL(svc))
	if err != nil {
		return 0, fmt.Errorf("dead letters of %s: %w", svc, err)
	}
	n := 0
	for _, d := range dls {
		if strings.HasPrefix(d.Key, prefix) {
			n++
		}
	}
	return n, nil
}

// secondInstances runs a second instance of each consumer service in its group under load,
// then SIGKILLs one instance of a random service mid-load and restarts it: the invariants, checked
// at the end of the run, show whether the rebalances lost or doubled anything.
func (r *Runner) secondInstances(ctx context.Context) PhaseResult {
	res := PhaseResult{Ran: true}
	var extras []*Extra
	for _, svc := range Services {
		addr, err := besideAddr(r.cfg.Endpoints.ServiceURL(svc), 100)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		e, err := r.cfg.Stack.StartExtra(ctx, svc, addr)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		extras = append(extras, e)
		r.logf("second instance: %s on %s in group %s-service", svc, e.Addr, svc)
	}
	time.Sleep(8 * time.Second)
	victim := Services[r.rng.IntN(len(Services))]
	if r.rng.IntN(2) == 0 {
		r.logf("second instance: SIGKILL the first %s mid-load", victim)
		if err := r.cfg.Stack.Kill(victim); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		time.Sleep(3 * time.Second)
		if err := r.cfg.Stack.Start(ctx, victim); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
	} else {
		for _, e := range extras {
			if e.Name == victim {
				r.logf("second instance: SIGKILL the second %s mid-load", victim)
				e.Kill()
			}
		}
	}
	time.Sleep(8 * time.Second)
	if err := r.probe(ctx, 2*time.Minute); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	for _, e := range extras {
		e.Kill()
	}
	res.Summary = fmt.Sprintf("%d second instances joined their groups under load; SIGKILLed one %s instance mid-load; then the second instances were SIGKILLed (more rebalances)", len(extras), victim)
	return res
}

// besideAddr returns host:port+delta for a service URL: where its second instance listens (the
// service's port + 100; it moves with STACK_PORT_OFFSET like the service does).
func besideAddr(serviceURL string, delta int) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("service url %q: %w", serviceURL, err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return "", fmt.Errorf("service url %q has no port", serviceURL)
	}
	return net.JoinHostPort(u.Hostname(), strconv.Itoa(port+delta)), nil
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
}

// jsonBody marshals v (used by the fuzzers' seeds).
func jsonBody(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
