package bench

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"outboxsaga.dev/tools/latency"
)

// Hop is the distribution of one hop of the pipeline for one topic.
type Hop struct {
	// Name is "debezium" (outbox commit → Kafka append) or "consumer <service>" (Kafka append →
	// the consuming service's handler commit).
	Name  string
	Topic string
	latency.Summary
}

// ServiceDBs names the service databases and the services that own them.
var ServiceDBs = map[string]string{"order": "order_db", "inventory": "inventory_db", "payment": "payment_db"}

// HopTimes tells how a hop's ends are measured (for the report).
type HopTimes struct {
	// CommitTimestamps is true when the handler commit time is the transaction's commit timestamp
	// (track_commit_timestamp = on), false when it is processed_at (the transaction's start).
	CommitTimestamps bool
	// LogAppendTime is true when the saga topics stamp records with the broker's append time.
	LogAppendTime bool
}

// Hops computes the per-hop breakdown of the events that occurred at or after since:
//
//   - debezium hop, per topic: Kafka record timestamp − envelope occurredAt. occurredAt is set
//     when the envelope is built, just before the outbox insert and the commit, so the hop
//     includes the rest of the transaction (a few ms) and the WAL → Debezium → producer path.
//   - consumer hop, per topic and consuming service: the commit time of the service's inbox row
//     (processed_events, joined by event id) − the Kafka record timestamp.
func Hops(ctx context.Context, adminURL string, tr *Tracker, since time.Time) ([]Hop, HopTimes, error) {
	recs := tr.recordsSince(since)
	var times HopTimes
	deb := map[string][]time.Duration{}
	for _, r := range recs {
		if r.appended.IsZero() || r.occurredAt.IsZero() {
			continue
		}
		deb[r.topic] = append(deb[r.topic], r.appended.Sub(r.occurredAt))
	}
	cons := map[[2]string][]time.Duration{}
	for svc, name := range ServiceDBs {
		u, err := withDatabase(adminURL, name)
		if err != nil {
			return nil, times, err
		}
		db, err := sql.Open("postgres", u)
		if err != nil {
			return nil, times, fmt.Errorf("hops: open %s: %w", name, err)
		}
		var setting string
		if err := db.QueryRowContext(ctx, `SHOW track_commit_timestamp`).Scan(&setting); err != nil {
			db.Close()
			return nil, times, fmt.Errorf("hops: %s: %w", name, err)
		}
		times.CommitTimestamps = setting == "on"
		commit := "processed_at"
		if times.CommitTimestamps {
			commit = "COALESCE(pg_xact_commit_timestamp(xmin), processed_at)"
		}
		rows, err := db.QueryContext(ctx,
			`SELECT event_id::text, `+commit+` FROM processed_events WHERE processed_at >= $1`, since)
		if err != nil {
			db.Close()
			return nil, times, fmt.Errorf("hops: read the inbox of %s: %w", name, err)
		}
		for rows.Next() {
			var (
				id string
				at time.Time
			)
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				db.Close()
				return nil, times, fmt.Errorf("hops: read the inbox of %s: %w", name, err)
			}
			r, ok := recs[id]
			if !ok || r.appended.IsZero() {
				continue
			}
			k := [2]string{r.topic, svc}
			cons[k] = append(cons[k], at.Sub(r.appended))
		}
		err = rows.Err()
		rows.Close()
		db.Close()
		if err != nil {
			return nil, times, fmt.Errorf("hops: read the inbox of %s: %w", name, err)
		}
	}
	var out []Hop
	for topic, ds := range deb {
		out = append(out, Hop{Name: "debezium", Topic: topic, Summary: latency.Summarize(ds)})
	}
	for k, ds := range cons {
		out = append(out, Hop{Name: "consumer " + k[1], Topic: k[0], Summary: latency.Summarize(ds)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Name < out[j].Name
	})
	return out, times, nil
}
