// Package webhooksink is the outside world's end of the notification webhook (Slack, on the
// stack): it keeps every POST it accepts, durably, and says what arrived: one entry per
// Idempotency-Key, with how many POSTs carried the key and the first body.
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

// Entry is what arrived under one Idempotency-Key: Deliveries counts the accepted POSTs that
// carried it, Body is the first one's body.
type Entry struct {
	Key        string          `json:"key"`
	Deliveries int             `json:"deliveries"`
	Body       json.RawMessage `json:"body"`
	orderID    string          // the first body's "orderId", "" when it has none
}

// record is one accepted POST as the data file holds it, one JSON object a line.
type record struct {
	At   time.Time       `json:"at"`
	Path string          `json:"path"`
	Key  string          `json:"key"`
	Body json.RawMessage `json:"body"`
}

// Loaded says what Open found in the data file.
type Loaded struct {
	Records int   // accepted POSTs
	Keys    int   // distinct Idempotency-Keys
	Torn    int64 // bytes of a torn last line that Open cut off
}

// Store is the sink's record of what arrived, in memory and in its data file. It is safe for
// concurrent use. Appends are serialized, in the order they are counted; their fsyncs are
// grouped: one covers every append made before it started.
type Store struct {
	mu      sync.Mutex // guards everything below but syncing
	file    *os.File
	size    int64 // the data file's length: everything up to it is whole records
	broken  error // set when the file may hold what is not whole or not durable: Record refuses until a restart
	entries []*Entry
	byKey   map[string]*Entry
	// written counts the appends; synced is how many of them an fsync covered.
	written, synced uint64
	// syncing lets one fsync run at a time: the appends made while it runs wait for the next,
	// which covers them all (group commit).
	syncing sync.Mutex
}

// Open opens the data file at path (creating it and its directory when missing) and loads what it
// holds. A last line that is not a whole record is cut off (Loaded.Torn); a broken line before
// the last one is an error: the file was not written by the sink alone.
func Open(path string) (*Store, Loaded, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, Loaded{}, fmt.Errorf("webhook sink data: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, Loaded{}, fmt.Errorf("webhook sink data: %w", err)
	}
	s := &Store{file: f, byKey: make(map[string]*Entry)}
	loaded, err := s.load(path)
	if err == nil {
		err = syncDir(filepath.Dir(path)) // the file's own directory entry survives a crash too
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
		s.add(rec.Key, rec.Body)
		s.size += int64(len(line))
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
	line, err := json.Marshal(record{At: time.Now().UTC(), Path: path, Key: key, Body: body})
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
	s.written++
	mine, e := s.written, *s.add(key, body)
	s.mu.Unlock()
	if err := s.sync(mine); err != nil {
		return Entry{}, fmt.Errorf("record %s: %w", key, err)
	}
	return e, nil
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

// add counts one delivery of key in memory.
func (s *Store) add(key string, body []byte) *Entry {
	e := s.byKey[key]
	if e == nil {
		var about struct {
			OrderID string `json:"orderId"`
		}
		_ = json.Unmarshal(body, &about) // an orderId that is not a string files the entry under none
		var compact bytes.Buffer
		_ = json.Compact(&compact, body) // Check let only valid JSON through
		e = &Entry{Key: key, Body: compact.Bytes(), orderID: about.OrderID}
		s.byKey[key] = e
		s.entries = append(s.entries, e)
	}
	e.Deliveries++
	return e
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
