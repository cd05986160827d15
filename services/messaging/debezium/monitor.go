package debezium

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Monitor watches one service's CDC path, the only way its events leave: its connector and the
// connector's task in Kafka Connect, and its replication slot in the service's own database. It
// polls both every Interval, exports what it saw as Prometheus gauges and answers the service's
// /readyz from the last poll (see Check).
type Monitor struct {
	// Connect tells the state of the connector and its tasks: Kafka Connect's status topic as the
	// service's own principal reads it (kafka.ConnectStatus), or the REST API (Client).
	Connect   StatusSource
	DB        *sql.DB
	Connector string        // e.g. order-outbox
	Slot      string        // e.g. order_outbox
	Interval  time.Duration // 0 means 2 s
	Log       zerolog.Logger

	mu   sync.Mutex
	last Health

	gauges *monitorGauges
}

// StatusSource answers the state of a connector and its tasks; ErrNotFound (wrapped) for one that
// is not registered.
type StatusSource interface {
	Status(ctx context.Context, name string) (Status, error)
}

var _ StatusSource = (*Client)(nil)

// Health is what one poll saw.
type Health struct {
	CheckedAt time.Time
	// ConnectError says why Kafka Connect could not be asked ("" when it answered).
	ConnectError   string
	ConnectorState string // RUNNING, PAUSED, FAILED, UNASSIGNED, ...; "" when unknown or not registered
	TaskState      string // the state of the connector's task(s): the worst of them
	// Trace is the first line of a failed connector's or task's error.
	Trace string
	// SlotError says why the slot could not be read ("" when it was).
	SlotError     string
	SlotFound     bool
	SlotActive    bool
	WALStatus     string // reserved, extended, unreserved, lost
	LagBytes      int64  // current WAL position − the slot's confirmed flush position
	RetainedBytes int64  // current WAL position − the slot's restart position: WAL kept for it
	// BaseBackups counts the base backups running on the cluster (pg_stat_progress_basebackup):
	// a copy of every database. A Debezium role's replication connection can start one, and
	// pg_hba.conf cannot tell it from logical decoding (docs/architecture.md, "Trust"), so the
	// services watch for it: nothing of the stack ever takes one.
	BaseBackups int
}

// Capturing reports whether the database's changes are still captured for the connector: the
// slot exists and has not lost the WAL it needs. While it is, events wait in the WAL and flow
// when the connector runs again; once it is not, events written now never reach Kafka.
func (h Health) Capturing() bool {
	return h.SlotError == "" && h.SlotFound && h.WALStatus != "lost"
}

// Streaming reports whether events flow right now: connector and task RUNNING, slot active.
func (h Health) Streaming() bool {
	return h.ConnectError == "" && h.ConnectorState == "RUNNING" && h.TaskState == "RUNNING" && h.SlotActive
}

// Problem describes what is wrong, or "" when the path streams.
func (h Health) Problem() string {
	var p []string
	switch {
	case h.CheckedAt.IsZero():
		return "not checked yet"
	case h.SlotError != "":
		p = append(p, "replication slot unreadable: "+h.SlotError)
	case !h.SlotFound:
		p = append(p, "no replication slot: events written now are never streamed (register the connector: make connectors)")
	case h.WALStatus == "lost":
		p = append(p, "replication slot lost its WAL: events are missing (see README, Troubleshooting)")
	case !h.SlotActive:
		p = append(p, "replication slot inactive: events wait in the WAL")
	}
	if h.BaseBackups > 0 {
		p = append(p, fmt.Sprintf("%d base backup(s) of the whole cluster running: a replication role is copying every database (none of the stack takes one)", h.BaseBackups))
	}
	if h.WALStatus == "unreserved" {
		p = append(p, "the slot holds more WAL than max_slot_wal_keep_size: it will be invalidated soon")
	}
	switch {
	case h.ConnectError != "":
		p = append(p, "Kafka Connect unreachable: "+h.ConnectError)
	case h.ConnectorState == "":
		p = append(p, "connector not registered")
	case h.ConnectorState != "RUNNING" || h.TaskState != "RUNNING":
		s := fmt.Sprintf("connector %s, task %s", h.ConnectorState, h.TaskState)
		if h.Trace != "" {
			s += ": " + h.Trace
		}
		p = append(p, s)
	}
	return strings.Join(p, "; ")
}

// DegradedError marks a problem that leaves a service degraded but ready: see Check.
type DegradedError struct{ Err error }

func (d DegradedError) Error() string { return d.Err.Error() }
func (d DegradedError) Unwrap() error { return d.Err }

// Degraded reports true: the service is degraded, not unavailable (httpapi.MountHealth asks).
func (d DegradedError) Degraded() bool { return true }

// Check is the /readyz probe. The service stays ready (the error is a DegradedError) while its
// events are captured, even if they do not flow: a failed or paused connector, Kafka Connect
// down, an inactive slot. Accepting work then is the point of the outbox: the events wait in
// the WAL and go out when the connector runs again. It is not ready (a plain error) when its
// events are no longer captured: no slot, or a slot that lost its WAL. Work accepted then would
// never reach the other services.
func (m *Monitor) Check(context.Context) error {
	h := m.Health()
	problem := h.Problem()
	if problem == "" {
		return nil
	}
	err := fmt.Errorf("%s/%s: %s", m.Connector, m.Slot, problem)
	if h.CheckedAt.IsZero() || h.Capturing() {
		return DegradedError{Err: err}
	}
	return err
}

// Health returns what the last poll saw.
func (m *Monitor) Health() Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// Register adds the monitor's gauges to reg:
//
//	cdc_connector_running{connector}             1 when the connector and its task run
//	cdc_task_state{connector,state}              1 for the task's current state
//	cdc_slot_capturing{slot}                     1 while the slot exists and has its WAL
//	cdc_slot_active{slot}                        1 while a connector streams from the slot
//	cdc_slot_lag_bytes{slot}                     WAL written but not yet confirmed by the connector
//	cdc_slot_retained_wal_bytes{slot}            WAL the slot keeps on disk
//	cdc_check_timestamp_seconds{connector}       when the last poll ran
//	pg_base_backups_running                      base backups of the cluster running (none is ours)
func (m *Monitor) Register(reg prometheus.Registerer) error {
	g := &monitorGauges{
		running:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_connector_running", Help: "1 when the service's Debezium connector and its task are RUNNING."}, []string{"connector"}),
		taskState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_task_state", Help: "1 for the current state of the connector's task (RUNNING, FAILED, PAUSED, UNASSIGNED, RESTARTING, STOPPED, NONE: no task, UNKNOWN: Connect unreachable)."}, []string{"connector", "state"}),
		capturing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_slot_capturing", Help: "1 while the replication slot exists and has not lost its WAL."}, []string{"slot"}),
		active:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_slot_active", Help: "1 while a connector streams from the replication slot."}, []string{"slot"}),
		lag:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_slot_lag_bytes", Help: "WAL bytes written but not yet confirmed by the connector."}, []string{"slot"}),
		retained:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_slot_retained_wal_bytes", Help: "WAL bytes the replication slot keeps on disk."}, []string{"slot"}),
		checked:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdc_check_timestamp_seconds", Help: "When the CDC path was last checked (Unix time)."}, []string{"connector"}),
		backups:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "pg_base_backups_running", Help: "Base backups of the whole PostgreSQL cluster running now (pg_stat_progress_basebackup); the stack takes none."}),
	}
	for _, c := range []prometheus.Collector{g.running, g.taskState, g.capturing, g.active, g.lag, g.retained, g.checked, g.backups} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register cdc metrics: %w", err)
		}
	}
	m.gauges = g
	return nil
}

// Run polls until ctx is done, then returns nil. A poll that fails is recorded, not returned:
// the monitor reports problems, it never stops the service.
func (m *Monitor) Run(ctx context.Context) error {
	interval := m.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	prev := ""
	for {
		h := m.Poll(ctx)
		if p := h.Problem(); p != prev && ctx.Err() == nil {
			if p == "" {
				m.Log.Info().Str("connector", m.Connector).Str("slot", m.Slot).Msg("CDC path streaming")
			} else {
				m.Log.Error().Str("connector", m.Connector).Str("slot", m.Slot).Str("problem", p).Msg("CDC path not streaming")
			}
			prev = p
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Poll checks the connector and the slot once, records and exports what it saw, and returns it.
func (m *Monitor) Poll(ctx context.Context) Health {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h := Health{CheckedAt: time.Now()}

	s, err := m.Connect.Status(ctx, m.Connector)
	switch {
	case errors.Is(err, ErrNotFound):
		// Registered nowhere: ConnectorState stays "".
	case err != nil:
		h.ConnectError = err.Error()
	default:
		h.ConnectorState = s.Connector.State
		h.TaskState = s.TaskState()
		h.Trace = s.FirstTrace()
	}

	err = m.DB.QueryRowContext(ctx, `
		SELECT active, coalesce(wal_status, ''),
		       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint,
		       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, m.Slot).
		Scan(&h.SlotActive, &h.WALStatus, &h.LagBytes, &h.RetainedBytes)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		h.SlotError = err.Error()
	default:
		h.SlotFound = true
	}
	if err := m.DB.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_progress_basebackup`).Scan(&h.BaseBackups); err != nil && h.SlotError == "" {
		h.SlotError = "base backups unreadable: " + err.Error()
	}

	m.mu.Lock()
	m.last = h
	m.mu.Unlock()
	m.export(h)
	return h
}

type monitorGauges struct {
	running, taskState, capturing, active, lag, retained, checked *prometheus.GaugeVec
	backups                                                       prometheus.Gauge
}

// taskStates are the states a task gauge has a series for.
// NONE: the connector has no task (stopped, or just created); UNKNOWN: Connect did not answer.
var taskStates = []string{"RUNNING", "FAILED", "PAUSED", "UNASSIGNED", "RESTARTING", "STOPPED", "NONE", "UNKNOWN"}

func (m *Monitor) export(h Health) {
	g := m.gauges
	if g == nil {
		return
	}
	g.running.WithLabelValues(m.Connector).Set(bool01(h.ConnectError == "" && h.ConnectorState == "RUNNING" && h.TaskState == "RUNNING"))
	state := h.TaskState
	switch {
	case h.ConnectError != "" || state == "":
		state = "UNKNOWN"
	case state == "NO TASK":
		state = "NONE"
	}
	for _, s := range taskStates {
		g.taskState.WithLabelValues(m.Connector, s).Set(bool01(s == state))
	}
	g.capturing.WithLabelValues(m.Slot).Set(bool01(h.Capturing()))
	g.active.WithLabelValues(m.Slot).Set(bool01(h.SlotActive))
	g.lag.WithLabelValues(m.Slot).Set(float64(h.LagBytes))
	g.retained.WithLabelValues(m.Slot).Set(float64(h.RetainedBytes))
	g.checked.WithLabelValues(m.Connector).Set(float64(h.CheckedAt.Unix()))
	g.backups.Set(float64(h.BaseBackups))
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
