package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"outboxsaga.dev/console"
)

// sagasView is the sagas list page.
type sagasView struct {
	Filter console.SagaFilter
	// Stuck are the PENDING sagas older than StuckAfter, oldest first.
	Stuck []console.Saga
	Page  console.SagaPage
	// Err says why the list could not be read.
	Err        string
	Statuses   []string
	Reasons    []string
	Steps      []string
	Ages       []string
	FirstPage  bool
	StuckAfter time.Duration
}

// sagasPage lists the sagas: the stuck ones on top, then the filtered list, newest first.
func (s *server) sagasPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "sagas", "Sagas", "sagas", s.loadSagas(r.Context(), r.URL.Query()))
}

// sagasLive streams the list's fragment as it changes, looking every sagasLiveInterval.
func (s *server) sagasLive(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	q := r.URL.Query()
	tick := time.NewTicker(sagasLiveInterval)
	defer tick.Stop()
	wake := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case wake <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	s.stream(ctx, w, func() ([]byte, error) { return s.fragment("sagas", "sagas-live", s.loadSagas(ctx, q)) }, wake, 0)
}

// sagasLiveInterval is how often a live sagas list reads the order service again (two reads).
const sagasLiveInterval = 3 * time.Second

// loadSagas reads what the sagas list shows.
func (s *server) loadSagas(ctx context.Context, q url.Values) sagasView {
	f := console.SagaFilter{Status: q.Get("status"), Reason: q.Get("reason"), OlderThan: q.Get("olderThan"),
		Waiting: q.Get("waiting"), Before: q.Get("before"), Limit: 50}
	v := sagasView{Filter: f, FirstPage: f.Before == "", StuckAfter: s.cfg.StuckAfter,
		Statuses: []string{"PENDING", "COMPLETED", "CANCELED"}, Reasons: []string{"OUT_OF_STOCK", "PAYMENT_FAILED", "TIMEOUT"},
		Steps: []string{"inventory", "payment", "shipping"}, Ages: []string{"10s", "1m", "5m", "1h", "24h"}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var stuckErr error
	if v.FirstPage {
		wg.Go(func() {
			p, err := s.cfg.Services.Sagas(ctx, console.SagaFilter{Status: "PENDING", OlderThan: fmt.Sprintf("%ds", int(s.cfg.StuckAfter.Seconds())), Limit: 20})
			stuckErr = err
			v.Stuck = p.Sagas
			sort.SliceStable(v.Stuck, func(i, j int) bool { return v.Stuck[i].CreatedAt.Before(v.Stuck[j].CreatedAt) })
		})
	}
	page, err := s.cfg.Services.Sagas(ctx, f)
	wg.Wait()
	if err == nil {
		err = stuckErr
	}
	if err != nil {
		v.Err = "The sagas could not be listed: " + err.Error()
	}
	v.Page = page
	return v
}

// sagaView is one saga's page and its live fragment.
type sagaView struct {
	ID            string
	Order         console.Order
	Timeline      console.Timeline
	Delivery      console.Delivery
	Notifications []console.Notification
	// Running is how long a saga that has not ended has run.
	Running time.Duration
	// TraceID and Waiting come from the order service's list ("" when it has none).
	TraceID, Waiting string
	Errs             []string
	At               time.Time
}

// loadSaga reads everything the saga page shows.
func (s *server) loadSaga(ctx context.Context, id string) (sagaView, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v := sagaView{ID: id, At: s.now()}
	o, err := s.cfg.Services.Order(ctx, id)
	if err != nil {
		return v, err
	}
	v.Order = o
	var (
		wg                  sync.WaitGroup
		events              []console.Event
		evErr, dlvErr, nErr error
	)
	wg.Go(func() { events, evErr = s.cfg.Services.Events(ctx, id) })
	wg.Go(func() { v.Delivery, dlvErr = s.cfg.Services.Delivery(ctx, id) })
	wg.Go(func() { v.Notifications, nErr = s.cfg.Services.Notifications(ctx, id) })
	wg.Go(func() {
		if p, err := s.cfg.Services.Sagas(ctx, console.SagaFilter{ID: id, Limit: 1}); err == nil && len(p.Sagas) == 1 {
			v.TraceID, v.Waiting = p.Sagas[0].TraceID, p.Sagas[0].Waiting
		}
	})
	wg.Wait()
	for _, e := range []error{evErr, dlvErr, nErr} {
		if e != nil {
			v.Errs = append(v.Errs, e.Error())
		}
	}
	v.Timeline = console.NewTimeline(events)
	if !o.Terminal() {
		v.Running = v.At.Sub(o.CreatedAt)
	}
	return v, nil
}

// sagaPage shows one saga; its fragment updates live (sagaLive).
func (s *server) sagaPage(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	v, err := s.loadSaga(r.Context(), id)
	if err != nil {
		status := http.StatusBadGateway
		if strings.Contains(err.Error(), "answered 404") {
			status = http.StatusNotFound
		}
		s.fail(w, r, status, fmt.Sprintf("Order %s could not be read: %v", id, err))
		return
	}
	s.render(w, r, http.StatusOK, "saga", "Saga "+shortID(id), "sagas", v)
}

// sagaLive streams the saga's fragment (Server-Sent Events, event "update") each time it
// changes: at once when the order service's status stream says so, else at the next look.
func (s *server) sagaLive(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	wake := make(chan struct{}, 1)
	go func() {
		_ = s.cfg.Services.Watch(ctx, id, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}()
	s.stream(ctx, w, func() ([]byte, error) {
		v, err := s.loadSaga(ctx, id)
		if err != nil {
			return nil, err
		}
		v.At = time.Time{} // not a change in itself
		return s.fragment("saga", "saga-live", v)
	}, wake, s.cfg.LiveInterval)
}

// fragment renders one named template of page name.
func (s *server) fragment(name, tmpl string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&b, tmpl, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", tmpl, err)
	}
	return b.Bytes(), nil
}

// stream writes render's output as an SSE "update" event whenever it differs from the last one
// sent, looking every every (0: never by itself) and when wake fires, until ctx ends.
func (s *server) stream(ctx context.Context, w http.ResponseWriter, render func() ([]byte, error), wake <-chan struct{}, every time.Duration) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	var last []byte
	for {
		if html, err := render(); err == nil && !bytes.Equal(html, last) {
			last = html
			var b bytes.Buffer
			b.WriteString("event: update\n")
			for _, line := range strings.Split(strings.TrimRight(string(html), "\n"), "\n") {
				b.WriteString("data: " + line + "\n")
			}
			b.WriteString("\n")
			if _, err := w.Write(b.Bytes()); err != nil {
				return
			}
			flusher.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-wake:
		}
	}
}

// deadLettersView is the dead letters page.
type deadLettersView struct {
	DeadLetters []console.DeadLetter
	Services    []string
	Service     string
	// State is "open" (not replayed), "replayed" or "" (all).
	State string
	// Q keeps the dead letters whose key, error, topic or event type holds it.
	Q string
	// Hidden counts the dead letters past the page's maxDeadLetterRows.
	Hidden   int
	Errs     []string
	Outcomes []console.ReplayOutcome
}

// deadLettersPerService is how many of each service's newest dead letters the page reads; a
// dead letter keeps its record (up to the broker's 1 MiB), so a thousand can weigh a gigabyte.
const deadLettersPerService = 100

// maxDeadLetterRows caps the rows of the page; a filter narrows the rest.
const maxDeadLetterRows = 200

// deadLettersPage lists every service's dead letters in one list, newest first.
func (s *server) deadLettersPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "deadletters", "Dead letters", "dead-letters", s.loadDeadLetters(r, nil))
}

func (s *server) loadDeadLetters(r *http.Request, outcomes []console.ReplayOutcome) deadLettersView {
	q := r.URL.Query()
	v := deadLettersView{Services: s.cfg.Services.Services(), Service: q.Get("service"), State: q.Get("state"),
		Q: strings.TrimSpace(q.Get("q")), Outcomes: outcomes}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	all, errs := s.cfg.Services.DeadLetters(ctx, deadLettersPerService)
	for name, err := range errs {
		v.Errs = append(v.Errs, fmt.Sprintf("%s: %v", name, err))
	}
	sort.Strings(v.Errs)
	for _, d := range all {
		if v.Service != "" && d.Service != v.Service {
			continue
		}
		replayed := d.Replayed()
		if (v.State == "open" && replayed) || (v.State == "replayed" && !replayed) {
			continue
		}
		if v.Q != "" && !strings.Contains(d.Key+"\x00"+d.Error+"\x00"+d.Topic+"\x00"+d.EventType, v.Q) {
			continue
		}
		if len(v.DeadLetters) == maxDeadLetterRows {
			v.Hidden++
			continue
		}
		v.DeadLetters = append(v.DeadLetters, d)
	}
	return v
}

// replay replays the dead letters the form selected (dl=<service>:<id>, one or many) and shows
// the list again with each replay's outcome.
func (s *server) replay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "The replay form could not be read.")
		return
	}
	refs := r.PostForm["dl"]
	if len(refs) > 200 {
		s.fail(w, r, http.StatusBadRequest, "At most 200 dead letters at once.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var outcomes []console.ReplayOutcome
	for _, ref := range refs {
		o := s.cfg.Services.Replay(ctx, ref)
		s.cfg.Log.Info().Str("deadLetter", ref).Bool("replayed", o.OK).Str("outcome", o.Detail).Msg("replay")
		s.actions.WithLabelValues("replay", outcome(o.OK)).Inc()
		outcomes = append(outcomes, o)
	}
	if len(refs) == 0 {
		outcomes = append(outcomes, console.ReplayOutcome{Detail: "Nothing was selected."})
	}
	s.render(w, r, http.StatusOK, "deadletters", "Dead letters", "dead-letters", s.loadDeadLetters(r, outcomes))
}

// outcome names an action's outcome for the metrics.
func outcome(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}

// healthView is the health page and its live fragment.
type healthView struct {
	console.Health
	Problems []console.Problem
	// Red holds the subjects of the problems (connectors, slots, groups) to colour their rows.
	Red        map[string]bool
	Thresholds console.Thresholds
	// Notice is the outcome of a restart.
	Notice, NoticeErr string
}

func (s *server) healthView() healthView {
	h := s.cfg.Health.Snapshot()
	v := healthView{Health: h, Problems: h.Problems(s.cfg.Thresholds), Red: map[string]bool{}, Thresholds: s.cfg.Thresholds}
	for _, p := range v.Problems {
		v.Red[p.Subject] = true
	}
	return v
}

// healthPage shows the connectors, the replication slots and the consumer groups' lag.
func (s *server) healthPage(w http.ResponseWriter, r *http.Request) {
	v := s.healthView()
	v.Notice, v.NoticeErr = r.URL.Query().Get("restarted"), r.URL.Query().Get("error")
	s.render(w, r, http.StatusOK, "health", "Pipeline health", "health", v)
}

// healthLive streams the health fragment as it changes.
func (s *server) healthLive(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	s.stream(ctx, w, func() ([]byte, error) { return s.fragment("health", "health-live", s.healthView()) }, nil, s.cfg.LiveInterval)
}

// restart restarts (or resumes) a connector through Connect's REST API.
func (s *server) restart(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	q := url.Values{}
	err := s.cfg.Connect.Restart(ctx, name)
	s.actions.WithLabelValues("restart", outcome(err == nil)).Inc()
	if err != nil {
		q.Set("error", fmt.Sprintf("%s could not be restarted: %v", name, err))
	} else {
		q.Set("restarted", name)
		s.cfg.Log.Info().Str("connector", name).Msg("connector restarted")
	}
	http.Redirect(w, r, "/health?"+q.Encode(), http.StatusSeeOther)
}
