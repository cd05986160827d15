package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/rs/zerolog"

	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/httpapi"
)

// lister answers List from a function.
type lister func(orderID string, limit int) ([]notification.Sent, error)

func (l lister) List(_ context.Context, orderID string, limit int) ([]notification.Sent, error) {
	return l(orderID, limit)
}

// TestNotifications: GET /notifications is an operator's, passes orderId and limit on, and
// answers the project's errors.
func TestNotifications(t *testing.T) {
	r := msghttp.NewRouter(zerolog.Nop())
	httpapi.Routes(r, httpapi.Config{AdminToken: "s3cret", Log: zerolog.Nop(), Sent: lister(func(orderID string, limit int) ([]notification.Sent, error) {
		if orderID == "broken" {
			return nil, errors.New("database down")
		}
		return []notification.Sent{{Key: orderID + ":" + strconv.Itoa(limit), Notification: notification.Notification{Kind: notification.KindAlert}}}, nil
	})})
	srv := httptest.NewServer(r)
	defer srv.Close()
	servicetest.Expect(t, srv.URL,
		servicetest.Request{Method: http.MethodGet, Path: "/notifications", Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications?orderId=o1", Auth: "Bearer s3cret", Want: http.StatusOK, WantBody: `"key":"o1:100"`},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications?limit=7", Auth: "Bearer s3cret", Want: http.StatusOK, WantBody: `"key":":7"`},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications?limit=1001", Auth: "Bearer s3cret", Want: http.StatusBadRequest, WantBody: `"code":"invalid"`},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications?limit=x", Auth: "Bearer s3cret", Want: http.StatusBadRequest},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications?orderId=broken", Auth: "Bearer s3cret", Want: http.StatusInternalServerError},
	)
}
