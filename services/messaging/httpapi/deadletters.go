package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/postgres"
)

// DeadLetterStore is what the dead-letter endpoints need (postgres.DeadLetters).
type DeadLetterStore interface {
	List(ctx context.Context, limit int) ([]postgres.DeadLetter, error)
	Replay(ctx context.Context, id int64, h messaging.Handler) error
}

// deadLetterJSON is one dead letter as operators see it.
type deadLetterJSON struct {
	ID          int64             `json:"id"`
	Service     string            `json:"service"`
	EventID     string            `json:"eventId"`
	EventType   string            `json:"eventType"`
	Topic       string            `json:"topic"`
	Partition   int32             `json:"partition"`
	Offset      int64             `json:"offset"`
	Key         string            `json:"key"`
	Headers     map[string]string `json:"headers"`
	Value       string            `json:"value"` // the record's bytes as text (invalid UTF-8 shown as U+FFFD), payment tokens redacted
	ValueValid  bool              `json:"valueIsUtf8"`
	Error       string            `json:"error"`
	Attempts    int               `json:"attempts"`
	CreatedAt   time.Time         `json:"createdAt"`
	ReplayedAt  *time.Time        `json:"replayedAt"`
	ReplayError string            `json:"replayError"`
}

// MountDeadLetters adds the operator endpoints, guarded by RequireAdmin(adminToken):
//
//	GET  /dead-letters?limit=N          newest first (default 100, at most 1000)
//	POST /dead-letters/{id}/replay      runs the stored record through replay again
//
// replay is the service's consumer chain WITHOUT the dead-letter middleware (it must
// decode the raw record and return the handler's error), so a replay that fails again
// answers 422 and keeps the dead letter, with the new error recorded. A replay of an
// event that already took effect is a no-op thanks to the inbox.
func MountDeadLetters(r chi.Router, store DeadLetterStore, replay messaging.Handler, adminToken string, log zerolog.Logger) {
	r.Group(func(r chi.Router) {
		r.Use(RequireAdmin(adminToken, log))
		r.Get("/dead-letters", func(w http.ResponseWriter, r *http.Request) {
			limit, err := parseLimit(r.URL.Query().Get("limit"))
			if err != nil {
				WriteError(w, r, log, err)
				return
			}
			dls, err := store.List(r.Context(), limit)
			if err != nil {
				WriteError(w, r, log, err)
				return
			}
			out := make([]deadLetterJSON, 0, len(dls))
			for _, d := range dls {
				out = append(out, deadLetterJSON{
					ID: d.ID, Service: d.Service, EventID: d.EventID, EventType: d.EventType,
					Topic: d.Topic, Partition: d.Partition, Offset: d.Offset, Key: d.Key, Headers: d.Headers,
					Value: string(messaging.Redact(d.Value)), ValueValid: utf8.Valid(d.Value), Error: redact(d.Error), Attempts: d.Attempts,
					CreatedAt: d.CreatedAt, ReplayedAt: d.ReplayedAt, ReplayError: redact(d.ReplayError),
				})
			}
			WriteJSON(w, http.StatusOK, out)
		})
		r.Post("/dead-letters/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
			id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
			if err != nil || id <= 0 {
				WriteError(w, r, log, fault.Errorf(fault.NotFound, "dead letter %q does not exist", chi.URLParam(r, "id")))
				return
			}
			err = store.Replay(r.Context(), id, replay)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				WriteError(w, r, log, fault.Errorf(fault.NotFound, "dead letter %d does not exist", id))
			case err != nil:
				why := redact(err.Error()) // the handler's error may quote the record
				log.Warn().Str("error", why).Int64("deadLetter", id).Msg("replay failed again")
				WriteError(w, r, log, fault.Errorf(fault.Unprocessable, "replay of dead letter %d failed again: %s", id, why))
			default:
				WriteJSON(w, http.StatusOK, map[string]any{"id": id, "replayed": true})
			}
		})
	})
}

// redact masks the payment tokens an error text may quote (messaging.Redact); rows stored before
// replay errors were redacted are masked on the way out.
func redact(s string) string { return string(messaging.Redact([]byte(s))) }

func parseLimit(s string) (int, error) {
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fault.Errorf(fault.Invalid, "limit must be a whole number from 1 to 1000, not %q", s)
	}
	return n, nil
}
