package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"outboxsaga.dev/messaging/fault"
)

// ErrRejected is wrapped by Post's error when the webhook refused a notification as malformed:
// a fault.Unprocessable, which a consumer takes as poison (messaging.Classify).
var ErrRejected = fault.Errorf(fault.Unprocessable, "the webhook rejected the notification")

// endpointDown are the 4xx statuses that say the endpoint cannot take anything now (or not from
// us until someone fixes its settings), not that this request is wrong: they count as an outage.
var endpointDown = []int{
	http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout,
	http.StatusConflict, http.StatusGone, http.StatusTooEarly, http.StatusTooManyRequests,
}

// call makes one POST under the per-call timeout and sorts its answer.
func (c *Client) call(ctx context.Context, key string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	c.signer.SignRequest(req, key, body)
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	said, _ := io.ReadAll(io.LimitReader(res.Body, 300))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && !slices.Contains(endpointDown, code):
		return fmt.Errorf("%w: %s %s", ErrRejected, res.Status, strings.ToValidUTF8(string(said), "?"))
	default:
		return fmt.Errorf("the webhook answered %s %s", res.Status, strings.ToValidUTF8(string(said), "?"))
	}
}
