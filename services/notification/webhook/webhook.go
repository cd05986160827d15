// Package webhook posts notifications to the Slack-compatible webhook (NOTIFY_WEBHOOK_URL): one
// JSON body per notification with the header Idempotency-Key: <eventId>:<kind>, a timeout per
// call, and retries with capped exponential backoff and jitter while the webhook fails. Every
// attempt of a notification carries the same key, so the webhook can drop the repeats. Every call
// is signed with the Standard Webhooks scheme (messaging/webhooksig): webhook-id is the
// Idempotency-Key, so the retries of a notification keep the same id; webhook-timestamp is the
// call's own, so a retry is never stale.
//
// What Post's error says to the consumer:
//   - the webhook is down (no answer, a timeout, a 5xx, a redirect, or a 4xx about the endpoint
//     or the moment: 401, 403, 404, 408, 409, 410, 425, 429) after every attempt: the error is
//     messaging.Outage, so the consumer retries the event until the webhook is back and never
//     dead-letters it for that;
//   - the webhook refused the request itself (any other 4xx: 400, 413, 422, ...): a bug of ours
//     that a retry cannot fix, so the error wraps ErrRejected, a fault.Unprocessable, which the
//     consumer's Router takes as poison (messaging.Classify): the event is dead-lettered (and
//     alerted on), and an operator replays it once the bug is fixed.
package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/webhooksig"
	"outboxsaga.dev/notification"
)

// Config sets where the webhook is and how patiently it is called; zero fields take defaults.
type Config struct {
	URL string
	// Secret signs every call: `whsec_<base64 of the key>` (required).
	Secret string
	// Timeout bounds one call (default 2s).
	Timeout time.Duration
	// Attempts is how many calls one Post makes before it reports an outage (default 4).
	Attempts int
	// Backoff is the wait after the first failed call, doubled after each further one up to
	// MaxBackoff, half of it random (defaults 100ms and 2s).
	Backoff, MaxBackoff time.Duration
	// Transport sends the calls (nil: http.DefaultTransport); the service's is a traced one
	// (messaging/tracing: a client span per call, its traceparent in the request).
	Transport http.RoundTripper
}

// Client posts to the webhook. It is safe for concurrent use.
type Client struct {
	cfg    Config
	signer *webhooksig.Signer
	http   *http.Client
	posts  *prometheus.CounterVec
}

// New returns a client of the webhook at cfg.URL (http or https) that signs with cfg.Secret and
// whose metrics are registered on reg.
func New(cfg Config, reg prometheus.Registerer) (*Client, error) {
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: want http(s)://host/path", cfg.URL)
	}
	if cfg.Timeout < 0 || cfg.Attempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("webhook client: timeout, attempts and backoff must not be negative")
	}
	if cfg.Secret == "" {
		return nil, errors.New("webhook client: no signing secret (NOTIFICATION_WEBHOOK_SECRET): the webhook would refuse every call")
	}
	signer, err := webhooksig.NewSigner(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("webhook client: %w", err)
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 2*time.Second)
	cfg.Attempts = cmp.Or(cfg.Attempts, 4)
	cfg.Backoff = cmp.Or(cfg.Backoff, 100*time.Millisecond)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 2*time.Second)
	return &Client{
		cfg:    cfg,
		signer: signer,
		// A redirect means the URL is wrong: it is answered as it is (an outage), not followed.
		http: &http.Client{Transport: cfg.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		posts: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "notification_webhook_posts_total",
			Help: "Calls to the webhook by outcome: ok, failed (retried; an outage once the attempts run out), rejected (a 4xx: dead-lettered).",
		}, []string{"outcome"}),
	}, nil
}

// Post sends n until the webhook accepts it (2xx), for at most Attempts calls; see the package
// comment for what its error means.
func (c *Client) Post(ctx context.Context, n notification.Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("notification %s: %w", n.Key(), err)
	}
	for attempt := 1; ; attempt++ {
		err := c.call(ctx, n.Key(), body)
		switch {
		case err == nil:
			c.posts.WithLabelValues("ok").Inc()
			return nil
		case errors.Is(err, ErrRejected):
			c.posts.WithLabelValues("rejected").Inc()
			return fmt.Errorf("notification %s: %w", n.Key(), err)
		}
		c.posts.WithLabelValues("failed").Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("notification %s: %w (last error: %w)", n.Key(), ctx.Err(), err)
		}
		if attempt >= c.cfg.Attempts {
			return messaging.Outage(fmt.Errorf("notification %s: the webhook is down after %d attempts: %w", n.Key(), attempt, err))
		}
		wait := min(c.cfg.Backoff<<min(attempt-1, 20), c.cfg.MaxBackoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("notification %s: %w (last error: %w)", n.Key(), ctx.Err(), err)
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
	}
}
