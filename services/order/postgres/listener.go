package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/rs/zerolog"
)

// StatusListener LISTENs on StatusChannel and wakes the subscribers of the order each
// notification names. One Postgres connection serves every open status stream.
type StatusListener struct {
	listener *pq.Listener

	mu   sync.Mutex
	subs map[uuid.UUID]map[chan struct{}]struct{}
}

// NewStatusListener prepares a listener on the database at dsn (a lib/pq connection string). It
// connects in the background and reconnects by itself; call Run to deliver notifications.
func NewStatusListener(dsn string, log zerolog.Logger) (*StatusListener, error) {
	s := &StatusListener{subs: make(map[uuid.UUID]map[chan struct{}]struct{})}
	s.listener = pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Warn().Err(err).Int("event", int(ev)).Msg("order status listener connection")
		}
	})
	if err := s.listener.Listen(StatusChannel); err != nil {
		s.listener.Close()
		return nil, err
	}
	return s, nil
}

// Run delivers notifications until ctx is done, then closes the connection.
func (s *StatusListener) Run(ctx context.Context) error {
	defer s.Close()
	// A connection that died silently only shows when something is sent on it.
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ping.C:
			go func() { _ = s.listener.Ping() }()
		case n := <-s.listener.Notify:
			if n == nil {
				// Reconnected: notifications sent while we were away are lost, so every
				// subscriber re-reads.
				s.wakeAll()
				continue
			}
			if id, err := uuid.Parse(n.Extra); err == nil {
				s.wake(id)
			}
		}
	}
}

// Close closes the connection. Closing twice, or after Run returned, is harmless.
func (s *StatusListener) Close() {
	_ = s.listener.Close() // the only error is "already closed"
}

// Subscribe returns a channel that receives a value whenever the status of order id may have
// changed, and the function that ends the subscription. Wake-ups coalesce: a subscriber that is
// busy gets one, not one per notification.
func (s *StatusListener) Subscribe(id uuid.UUID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[id] == nil {
		s.subs[id] = make(map[chan struct{}]struct{})
	}
	s.subs[id][ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs[id], ch)
		if len(s.subs[id]) == 0 {
			delete(s.subs, id)
		}
	}
}

func (s *StatusListener) wake(id uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs[id] {
		notify(ch)
	}
}

func (s *StatusListener) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, chans := range s.subs {
		for ch := range chans {
			notify(ch)
		}
	}
}

// notify sends on ch unless a wake-up is already pending.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
