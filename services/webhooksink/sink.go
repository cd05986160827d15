// Package webhooksink is the outside world's end of the notification webhook (Slack, on the
// stack): it keeps every POST it accepts, durably, and says what arrived: one entry per
// Idempotency-Key, with how many POSTs carried the key and the first body.
//
// Bounds: it keeps at most MaxKeys keys (DefaultMaxKeys unless told): the key that arrived first
// is forgotten first (Stats.Evicted counts them), and a key that comes again after it was
// forgotten starts afresh. Its data file is rewritten with one line per kept key (compaction)
// when it holds more than twice MaxKeys lines, at Open or after a POST; a body is at most 64 KiB
// (the HTTP API refuses larger ones).
//
// Durability: an accepted POST is one JSON line appended to a data file and fsynced before the
// sink answers 200, so a sink that is SIGKILLed loses nothing it acknowledged. Open reloads the
// file; a torn last line (the sink died while writing it, before it answered) is cut off, since
// its sender got no answer and sends again.
package webhooksink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"outboxsaga.dev/messaging/fault"
)

// MaxKeyBytes bounds the Idempotency-Key header: up to 255 printable ASCII characters, the
// project's bound for that header.
const MaxKeyBytes = 255

// DefaultMaxKeys is how many keys a store keeps when Open is given no bound.
const DefaultMaxKeys = 100_000

// Entry is what arrived under one Idempotency-Key: Deliveries counts the accepted POSTs that
// carried it, Body is the first one's body.
type Entry struct {
	Key        string          `json:"key"`
	Deliveries int             `json:"deliveries"`
	Body       json.RawMessage `json:"body"`
	orderID    string          // the first body's "orderId", "" when it has none
	at         time.Time       // when the first body arrived
	path       string          // where the first body was POSTed
}

// record is one accepted POST as the data file holds it, one JSON object a line; a line that
// compaction wrote stands for Deliveries POSTs of its key (absent: one).
type record struct {
	At         time.Time       `json:"at"`
	Path       string          `json:"path"`
	Key        string          `json:"key"`
	Body       json.RawMessage `json:"body"`
	Deliveries int             `json:"deliveries,omitempty"`
}

// Loaded says what Open found in the data file.
type Loaded struct {
	Records int   // lines of the data file
	Keys    int   // distinct Idempotency-Keys kept
	Torn    int64 // bytes of a torn last line that Open cut off
}

// Stats says how much the store holds.
type Stats struct {
	Keys    int    // distinct Idempotency-Keys kept
	Evicted uint64 // keys forgotten to keep at most MaxKeys, since Open
}

// Store is the sink's record of what arrived, in memory and in its data file. It is safe for
// concurrent use. Appends are serialized, in the order they are counted; their fsyncs are
// grouped: one covers every append made before it started.
type Store struct {
	mu      sync.Mutex // guards everything below but syncing
	path    string
	file    *os.File
	size    int64 // the data file's length: everything up to it is whole records
	lines   int   // the data file's lines (records)
	maxKeys int
	evicted uint64
	// compactAt is the number of lines above which the file is compacted.
	compactAt int
	broken    error // set when the file may hold what is not whole or not durable: Record refuses until a restart
	entries   []*Entry
	byKey     map[string]*Entry
	// written counts the appends; synced is how many of them an fsync covered.
	written, synced uint64
	// syncing lets one fsync run at a time: the appends made while it runs wait for the next,
	// which covers them all (group commit).
	syncing sync.Mutex
}

// Open opens the data file at path (creating it and its directory when missing) and loads what it
// holds, keeping at most maxKeys keys (<= 0: DefaultMaxKeys). A last line that is not a whole
// record is cut off (Loaded.Torn); a broken line before the last one is an error: the file was
// not written by the sink alone.
func Open(path string, maxKeys int) (*Store, Loaded, error) {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, Loaded{}, fmt.Errorf("webhook sink data: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, Loaded{}, fmt.Errorf("webhook sink data: %w", err)
	}
	s := &Store{path: path, file: f, byKey: make(map[string]*Entry), maxKeys: maxKeys, compactAt: 2 * maxKeys}
	loaded, err := s.load(path)
	if err == nil {
		err = syncDir(filepath.Dir(path)) // the file's own directory entry survives a crash too
	}
	if err == nil && s.lines > s.compactAt {
		err = s.compact()
	}
	if err != nil {
		f.Close()
		return nil, Loaded{}, err
	}
	return s, loaded, nil
}

// load reads every whole record of the file into memory and cuts off a torn last line.
func (s *Store) load(path string) (Loaded, error) {
	var loaded Loaded
	r := bufio.NewReader(s.file)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			loaded.Torn = int64(len(line))
			break
		}
		if err != nil {
			return loaded, fmt.Errorf("read %s: %w", path, err)
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil || Check(rec.Key, rec.Body) != nil {
			if _, more := r.Peek(1); more == nil {
				return loaded, fmt.Errorf("%s line %d is not a record of the sink (%v): move the file away to start afresh", path, n, err)
			}
			loaded.Torn = int64(len(line))
			break
		}
		s.add(rec.Key, rec.Body, max(rec.Deliveries, 1), rec.At, rec.Path)
		s.size += int64(len(line))
		s.lines++
		loaded.Records++
	}
	if loaded.Torn > 0 {
		if err := s.file.Truncate(s.size); err != nil {
			return loaded, fmt.Errorf("cut the torn last line of %s: %w", path, err)
		}
	}
	loaded.Keys = len(s.entries)
	return loaded, nil
}

// Check refuses (fault.Invalid) what the sink does not record: a missing or malformed
// Idempotency-Key (1–255 printable ASCII characters) or a body that is not a JSON object.
func Check(key string, body []byte) error {
	if key == "" {
		return fault.Errorf(fault.Invalid, "Idempotency-Key: the header is required")
	}
	if len(key) > MaxKeyBytes {
		return fault.Errorf(fault.Invalid, "Idempotency-Key: at most %d characters", MaxKeyBytes)
	}
	for i := range len(key) {
		if key[i] < 0x20 || key[i] > 0x7e {
			return fault.Errorf(fault.Invalid, "Idempotency-Key: printable ASCII characters only")
		}
	}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return fault.Errorf(fault.Invalid, "the body must be a JSON object")
	}
	return nil
}

// Record keeps one POST to path: it appends it to the data file, counts it and returns once an
// fsync covered it, with the key's entry as it stood after this POST. A repeated key counts one
// more delivery and keeps the first body. (A GET may see a POST a few milliseconds before its
// fsync ends; its sender has no answer yet and would send it again if the sink died then.)
func (s *Store) Record(path, key string, body []byte) (Entry, error) {
	if err := Check(key, body); err != nil {
		return Entry{}, err
	}
	now := time.Now().UTC()
	line, err := json.Marshal(record{At: now, Path: path, Key: key, Body: body})
	if err != nil {
		return Entry{}, fmt.Errorf("record %s: %w", key, err)
	}
	s.mu.Lock()
	if s.broken != nil {
		s.mu.Unlock()
		return Entry{}, s.broken
	}
	if _, err := s.file.Write(append(line, '\n')); err != nil {
		err = s.undo(key, err)
		s.mu.Unlock()
		return Entry{}, err
	}
	s.size += int64(len(line)) + 1
	s.lines++
	s.written++
	mine, e, full := s.written, *s.add(key, body, 1, now, path), s.lines > s.compactAt
	s.mu.Unlock()
	if err := s.sync(mine); err != nil {
		return Entry{}, fmt.Errorf("record %s: %w", key, err)
	}
	if full {
		// The POST is durable already: a failed compaction is tried again later, and only a
		// file left in doubt (Store.broken) refuses the next POSTs.
		_ = s.compact()
	}
	return e, nil
}

// compact rewrites the data file with one line per kept key (its deliveries counted in it):
// written to a new file, fsynced, renamed over the old one. On a failure before the rename the
// old file stays and the next try waits until MaxKeys more lines arrived.
func (s *Store) compact() error {
	s.syncing.Lock()
	defer s.syncing.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil || s.lines <= s.compactAt {
		return s.broken
	}
	tmp := s.path + ".compact"
	f, size, err := s.writeEntries(tmp)
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp)
		s.compactAt = s.lines + s.maxKeys
		return fmt.Errorf("compact %s: %w", s.path, err)
	}
	s.file.Close()
	s.file, s.size, s.lines, s.synced, s.compactAt = f, size, len(s.entries), s.written, 2*s.maxKeys
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		s.broken = fmt.Errorf("compacted data file may not survive a crash (restart the sink): %w", err)
		return s.broken
	}
	return nil
}

// writeEntries writes every kept entry to a new file at path, fsynced, and returns it open for
// appending with its size.
func (s *Store) writeEntries(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	w := bufio.NewWriter(f)
	var size int64
	for _, e := range s.entries {
		line, err := json.Marshal(record{At: e.at, Path: e.path, Key: e.Key, Body: e.Body, Deliveries: e.Deliveries})
		if err != nil {
			return f, 0, err
		}
		n, err := w.Write(append(line, '\n'))
		if err != nil {
			return f, 0, err
		}
		size += int64(n)
	}
	if err := w.Flush(); err != nil {
		return f, 0, err
	}
	if err := f.Sync(); err != nil {
		return f, 0, err
	}
	return f, size, nil
}

// sync returns once an fsync that started after append number n covered it.
func (s *Store) sync(n uint64) error {
	s.syncing.Lock()
	defer s.syncing.Unlock()
	s.mu.Lock()
	upTo, done, broken := s.written, s.synced >= n, s.broken
	s.mu.Unlock()
	if done || broken != nil {
		return broken
	}
	err := s.file.Sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// What the kernel failed to write is unknown; refuse until a restart reloads the file.
		s.broken = fmt.Errorf("fsync the data file (restart the sink): %w", err)
		return s.broken
	}
	s.synced = upTo
	return nil
}

// undo cuts off what a failed append may have left, so that the next one starts on a whole
// line; when it cannot, the store stops recording (a restart cuts the torn line).
func (s *Store) undo(key string, err error) error {
	err = fmt.Errorf("record %s: %w", key, err)
	if terr := s.file.Truncate(s.size); terr != nil {
		s.broken = fmt.Errorf("the data file has a torn line (%w); restart the sink: %w", terr, err)
		return s.broken
	}
	return err
}

// add counts n deliveries of key in memory; a new key beyond maxKeys evicts the oldest.
func (s *Store) add(key string, body []byte, n int, at time.Time, path string) *Entry {
	e := s.byKey[key]
	if e == nil {
		var about struct {
			OrderID string `json:"orderId"`
		}
		_ = json.Unmarshal(body, &about) // an orderId that is not a string files the entry under none
		var compact bytes.Buffer
		_ = json.Compact(&compact, body) // Check let only valid JSON through
		e = &Entry{Key: key, Body: compact.Bytes(), orderID: about.OrderID, at: at, path: path}
		s.byKey[key] = e
		s.entries = append(s.entries, e)
		for len(s.entries) > s.maxKeys {
			delete(s.byKey, s.entries[0].Key)
			s.entries[0] = nil
			s.entries = s.entries[1:]
			s.evicted++
		}
	}
	e.Deliveries += n
	return e
}

// Stats says how many keys the store keeps and how many it forgot.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Keys: len(s.entries), Evicted: s.evicted}
}

// List returns the entries whose first body names orderID ("" for every entry), in the order
// their keys first arrived: the last limit of them when there are more.
func (s *Store) List(orderID string, limit int) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Entry{}
	for _, e := range s.entries {
		if orderID == "" || e.orderID == orderID {
			out = append(out, *e)
		}
	}
	return out[max(0, len(out)-limit):]
}

// Close closes the data file.
func (s *Store) Close() error { return s.file.Close() }

// syncDir fsyncs a directory, so that a file just created in it is there after a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
