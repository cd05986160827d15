package customer

import (
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
)

// RateLimited is the code a caller over its request rate sees (HTTP 429).
const RateLimited = "rate_limited"

// sweepEvery is how often the limiter forgets customers whose bucket is full again.
const sweepEvery = time.Minute

// Limiter holds a token bucket per customer: perSecond requests a second on average, burst at
// once. Buckets that are full again (the customer has been quiet) are forgotten, so the memory it
// takes follows the customers active in the last minute.
type Limiter struct {
	perSecond rate.Limit
	burst     int
	now       func() time.Time

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// NewLimiter returns a limiter of perSecond requests a second and burst at once per customer; a
// perSecond ≤ 0 returns nil, which limits nothing.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return newLimiter(perSecond, burst, time.Now)
}

func newLimiter(perSecond float64, burst int, now func() time.Time) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiter{perSecond: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*rate.Limiter{}, lastSweep: now()}
}

// Allow takes one request from customer's bucket. When the bucket is empty it takes nothing and
// returns false with how long until it holds a request again.
func (l *Limiter) Allow(customer string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		for c, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, c)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[customer]
	if !ok {
		b = rate.NewLimiter(l.perSecond, l.burst)
		l.buckets[customer] = b
	}
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Middleware answers 429 `{"code":"rate_limited"}` with Retry-After to a customer over the rate; it
// runs after Require or RequireOrOperator (operators are not limited). A nil l limits nothing.
func (l *Limiter) Middleware(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, ok := FromContext(r.Context()); ok && c.Customer != "" {
				if ok, wait := l.Allow(c.Customer); !ok {
					msghttp.WriteError(w, r, log, fault.Limited(RateLimited, wait,
						"customer %q is over its request rate; try again after the Retry-After seconds", c.Customer))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
