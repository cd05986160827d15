// Package httpapi serves the notification service's own route over HTTP (chi): the operators'
// listing of what was sent. Health, readiness, metrics, the recover policy and the dead-letter
// endpoints are the shared runtime's (messaging/service).
package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/notification"
)

// Lister lists sent notifications; *postgres.SentNotifications implements it.
type Lister interface {
	List(ctx context.Context, orderID string, limit int) ([]notification.Sent, error)
}

// Config is what the routes are built from.
type Config struct {
	Sent Lister
	// AdminToken guards the listing; empty leaves it open (local development).
	AdminToken string
	Log        zerolog.Logger
}

// Routes adds, behind the admin token, GET /notifications?orderId=&limit=: the newest limit
// (default 100, at most 1000) notifications the webhook accepted about the order (every order
// without orderId), oldest first, as {"key","text","kind","event","orderId","eventId","sentAt"}.
func Routes(r chi.Router, cfg Config) {
	r.With(msghttp.RequireAdmin(cfg.AdminToken, cfg.Log)).Get("/notifications", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := strconv.Atoi(q.Get("limit"))
		switch {
		case q.Get("limit") == "":
			limit, err = 100, nil
		case err != nil || limit < 1 || limit > 1000:
			err = fault.Errorf(fault.Invalid, "limit must be a whole number from 1 to 1000")
		}
		var sent []notification.Sent
		if err == nil {
			sent, err = cfg.Sent.List(r.Context(), q.Get("orderId"), limit)
		}
		if err != nil {
			msghttp.WriteError(w, r, cfg.Log, err)
			return
		}
		msghttp.WriteJSON(w, http.StatusOK, sent)
	})
}
