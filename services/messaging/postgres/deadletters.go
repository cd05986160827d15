package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"outboxsaga.dev/messaging"
)

// DeadLetter is a stored poison message.
type DeadLetter struct {
	messaging.Record // stored byte for byte
	ID               int64
	Service          string
	EventID          string // "" when the message was undecodable
	EventType        string // "" when the message was undecodable
	Error            string
	Attempts         int
	CreatedAt        time.Time
	ReplayedAt       *time.Time // nil until replayed
	ReplayError      string     // "" when the last replay succeeded (or none happened)
}

// Message rebuilds the raw Kafka message (undecoded: Envelope is empty) for a replay through a
// handler chain that decodes it.
func (d DeadLetter) Message() *messaging.Message {
	return &messaging.Message{Record: d.Record}
}

// deadLetteredData is the data of a DeadLettered event (schemas/DeadLettered.v1.json). It copies
// only bounded excerpts of the poison record (which can be up to Kafka's 1 MiB, key included), so
// that the event always fits: the record itself stays in the dead_letters table.
type deadLetteredData struct {
	Service      string `json:"service"`
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	Offset       int64  `json:"offset"`
	Key          string `json:"key"`
	KeyBytes     int    `json:"keyBytes"`
	EventID      string `json:"eventId"`
	EventType    string `json:"eventType"`
	Error        string `json:"error"`
	Attempts     int    `json:"attempts"`
	ValueExcerpt string `json:"valueExcerpt"`
	ValueBytes   int    `json:"valueBytes"`
}

// What a DeadLettered event copies of a poison record at most, in bytes (the schema's
// maxLength says the same in characters).
const (
	maxKeyExcerpt   = 256
	maxIDExcerpt    = 128
	maxErrorExcerpt = 2048
	maxValueExcerpt = 512
	// maxAggregateID is the longest Kafka key used as the DeadLettered event's own key.
	maxAggregateID = 128
)

// DeadLetters stores, lists and replays a service's dead letters.
type DeadLetters struct {
	db     *sql.DB
	outbox *Outbox
}

// NewDeadLetters returns the dead letters of the service database db; DeadLettered events go
// out through outbox.
func NewDeadLetters(db *sql.DB, outbox *Outbox) *DeadLetters {
	return &DeadLetters{db: db, outbox: outbox}
}

// Store saves m (its value byte for byte, for a replay) with the error that made the consumer give
// up (payment tokens redacted), and in the same transaction emits
// a DeadLettered event through the outbox (aggregate type "dead-letter", key = m's key or
// "unknown"). m may be undecodable: only Topic, Partition, Offset, Key, Headers and Value are
// needed. Storing the same Kafka record (service, topic, partition, offset) again returns the
// existing id and emits nothing.
func (d *DeadLetters) Store(ctx context.Context, service string, m *messaging.Message, cause error, attempts int) (int64, error) {
	errText := "unknown error"
	if cause != nil {
		errText = text(string(messaging.Redact([]byte(cause.Error()))))
	}
	key := text(m.Key)
	headers := make(map[string]string, len(m.Headers))
	for k, v := range m.Headers {
		headers[text(k)] = text(v)
	}
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return 0, fmt.Errorf("store dead letter %s/%d/%d: headers: %w", m.Topic, m.Partition, m.Offset, err)
	}
	var id int64
	err = WithTx(ctx, d.db, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			INSERT INTO dead_letters (service, event_id, event_type, topic, partition, "offset", key, headers, value, error, attempts)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (service, topic, partition, "offset") DO NOTHING
			RETURNING id`,
			service, text(m.EventID), text(m.EventType), m.Topic, m.Partition, m.Offset, key,
			string(headersJSON), m.Value, errText, attempts).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return tx.QueryRowContext(ctx,
				`SELECT id FROM dead_letters WHERE service = $1 AND topic = $2 AND partition = $3 AND "offset" = $4`,
				service, m.Topic, m.Partition, m.Offset).Scan(&id)
		}
		if err != nil {
			return err
		}
		return d.emitDeadLettered(ctx, tx, service, m, errText, attempts)
	})
	if err != nil {
		return 0, fmt.Errorf("store dead letter %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return id, nil
}

// emitDeadLettered writes the DeadLettered event of a new dead letter to the outbox. Its key is
// the poison record's key when that is a plausible id (short, printable), and otherwise a digest
// of it, so that a huge or binary key cannot make the event unwritable.
func (d *DeadLetters) emitDeadLettered(ctx context.Context, tx *sql.Tx, service string, m *messaging.Message, errText string, attempts int) error {
	_, err := d.outbox.EmitFor(ctx, tx, m, "dead-letter", deadLetterKey(m.Key), 1, messaging.Event{Type: "DeadLettered", Data: deadLetteredData{
		Service:      service,
		Topic:        m.Topic,
		Partition:    m.Partition,
		Offset:       m.Offset,
		Key:          excerpt(m.Key, maxKeyExcerpt),
		KeyBytes:     len(m.Key),
		EventID:      excerpt(m.EventID, maxIDExcerpt),
		EventType:    excerpt(m.EventType, maxIDExcerpt),
		Error:        excerpt(errText, maxErrorExcerpt),
		Attempts:     attempts,
		ValueExcerpt: excerpt(string(messaging.Redact(m.Value)), maxValueExcerpt),
		ValueBytes:   len(m.Value),
	}})
	return err
}

// deadLetterKey is the aggregate id (Kafka key) of the DeadLettered event of a record with key.
func deadLetterKey(key string) string {
	switch {
	case key == "":
		return "unknown"
	case len(key) <= maxAggregateID && utf8.ValidString(key) && !strings.ContainsFunc(key, unicode.IsControl):
		return key
	default:
		sum := sha256.Sum256([]byte(key))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
}

// excerpt returns at most n bytes of s as storable text (see text), cut at a character boundary.
func excerpt(s string, n int) string {
	s = text(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// List returns up to limit dead letters, newest first.
func (d *DeadLetters) List(ctx context.Context, limit int) ([]DeadLetter, error) {
	rows, err := d.db.QueryContext(ctx, selectDeadLetter+` ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		dl, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, dl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// Get returns the dead letter id; the error wraps sql.ErrNoRows when there is none.
func (d *DeadLetters) Get(ctx context.Context, id int64) (DeadLetter, error) {
	dl, err := scanDeadLetter(d.db.QueryRowContext(ctx, selectDeadLetter+` WHERE id = $1`, id))
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter %d: %w", id, err)
	}
	return dl, nil
}

// MarkReplayed records a replay of dead letter id and its outcome (replayErr nil = success).
// The error wraps sql.ErrNoRows when there is no such dead letter.
func (d *DeadLetters) MarkReplayed(ctx context.Context, id int64, replayErr error) error {
	var errText sql.NullString
	if replayErr != nil {
		// The error may quote the record (a schema validator's does): no payment token is kept.
		errText = sql.NullString{String: text(string(messaging.Redact([]byte(replayErr.Error())))), Valid: true}
	}
	res, err := d.db.ExecContext(ctx, `UPDATE dead_letters SET replayed_at = now(), replay_error = $2 WHERE id = $1`, id, errText)
	if err != nil {
		return fmt.Errorf("mark dead letter %d replayed: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("mark dead letter %d replayed: %w", id, errors.Join(err, sql.ErrNoRows))
	}
	return nil
}

// Replay runs dead letter id's stored bytes through h and records the outcome. h must decode the
// message and must not dead-letter it again (leave the DeadLetter middleware out), so that a
// failing replay returns its error. The returned error is h's, or one of storage.
func (d *DeadLetters) Replay(ctx context.Context, id int64, h messaging.Handler) error {
	dl, err := d.Get(ctx, id)
	if err != nil {
		return err
	}
	replayErr := h(ctx, dl.Message())
	if err := d.MarkReplayed(ctx, id, replayErr); err != nil {
		return errors.Join(replayErr, err)
	}
	if replayErr != nil {
		return fmt.Errorf("replay dead letter %d: %w", id, replayErr)
	}
	return nil
}

const selectDeadLetter = `SELECT id, service, event_id, event_type, topic, partition, "offset", key, headers, value,
	error, attempts, created_at, replayed_at, replay_error FROM dead_letters`

// scanDeadLetter reads one row of selectDeadLetter.
func scanDeadLetter(row interface{ Scan(...any) error }) (DeadLetter, error) {
	var (
		dl          DeadLetter
		headers     []byte
		replayedAt  sql.NullTime
		replayError sql.NullString
	)
	err := row.Scan(&dl.ID, &dl.Service, &dl.EventID, &dl.EventType, &dl.Topic, &dl.Partition, &dl.Offset, &dl.Key,
		&headers, &dl.Value, &dl.Error, &dl.Attempts, &dl.CreatedAt, &replayedAt, &replayError)
	if err != nil {
		return DeadLetter{}, err
	}
	if err := json.Unmarshal(headers, &dl.Headers); err != nil {
		return DeadLetter{}, fmt.Errorf("headers of dead letter %d: %w", dl.ID, err)
	}
	if replayedAt.Valid {
		dl.ReplayedAt = &replayedAt.Time
	}
	dl.ReplayError = replayError.String
	return dl, nil
}

// text makes s storable in a Postgres text or jsonb value: valid UTF-8, no NUL.
func text(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
