package console

import (
	"context"
	"sync"
	"time"
)

// The sources of the pipeline's health, each a public surface; nil ones are left out (and said
// so on the page).
type (
	// ConnectorSource lists Kafka Connect's connectors (connect.Client).
	ConnectorSource interface {
		Connectors(ctx context.Context) ([]Connector, error)
	}
	// SlotSource lists the replication slots (postgres.Slots).
	SlotSource interface {
		Slots(ctx context.Context) ([]Slot, error)
	}
	// LagSource reads the consumer groups' lag (kafka.Reader).
	LagSource interface {
		Lags() ([]PartitionLag, error)
	}
)

// Monitor samples the pipeline's health every interval, so that a page shows the latest sample
// at once and the lag has a trend.
type Monitor struct {
	connectors ConnectorSource
	slots      SlotSource
	lags       LagSource
	interval   time.Duration
	now        func() time.Time

	mu   sync.RWMutex
	last Health
}

// NewMonitor returns a monitor of the sources; nil sources are reported as not configured.
func NewMonitor(c ConnectorSource, s SlotSource, l LagSource, interval time.Duration) *Monitor {
	return &Monitor{connectors: c, slots: s, lags: l, interval: interval, now: time.Now}
}

// Snapshot returns the latest sample.
func (m *Monitor) Snapshot() Health {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.last
}

// Run samples until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.Sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample reads every source once (in parallel, each within the interval or 5 s) and keeps the
// result.
func (m *Monitor) Sample(ctx context.Context) Health {
	ctx, cancel := context.WithTimeout(ctx, max(m.interval, 5*time.Second))
	defer cancel()
	h := Health{At: m.now()}
	var (
		wg               sync.WaitGroup
		cErr, sErr, lErr error
		unset            []string
	)
	if m.connectors != nil {
		wg.Go(func() { h.Connectors, cErr = m.connectors.Connectors(ctx) })
	} else {
		unset = append(unset, "Kafka Connect's REST API is not configured (CONNECT_URL)")
	}
	if m.slots != nil {
		wg.Go(func() { h.Slots, sErr = m.slots.Slots(ctx) })
	} else {
		unset = append(unset, "the replication slots are not read: CONSOLE_DATABASE_URL is not set")
	}
	if m.lags != nil {
		wg.Go(func() { h.Lags, lErr = m.lags.Lags() })
	} else {
		unset = append(unset, "the consumer lag is not read: Kafka is not configured")
	}
	wg.Wait()
	h.Unconfigured = unset
	for what, err := range map[string]error{"Kafka Connect": cErr, "the replication slots": sErr, "the consumer lag": lErr} {
		if err != nil {
			h.Unreadable = append(h.Unreadable, "cannot read "+what+": "+err.Error())
		}
	}
	m.mu.Lock()
	m.last = h
	m.mu.Unlock()
	return h
}
