// Package schemas holds the JSON Schema (draft 2020-12) of every event type and version the
// services exchange, one file per pair named <EventType>.v<N>.json, and a Validator for them.
//
// Each schema describes the whole envelope (eventId, eventType, ..., data), not only data, so a
// producer test or a consumer can validate the exact bytes that travel on Kafka.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.json
var files embed.FS

// ErrUnknownEvent is returned (wrapped) by Validate for an event type and version that has no schema.
var ErrUnknownEvent = errors.New("unknown event type or version")

// key identifies a schema.
type key struct {
	eventType string
	version   int
}

// Validator validates event envelopes against the embedded schemas. It is safe for concurrent use.
type Validator struct {
	schemas map[key]*jsonschema.Schema
}

// New compiles every embedded schema. Format keywords (uuid, date-time) are asserted.
func New() (*Validator, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	v := &Validator{schemas: make(map[key]*jsonschema.Schema, len(names))}
	for _, name := range names {
		k, err := parseName(name)
		if err != nil {
			return nil, err
		}
		raw, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", name, err)
		}
		if err := c.AddResource(name, doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", name, err)
		}
		sch, err := c.Compile(name)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		v.schemas[k] = sch
	}
	return v, nil
}

// Known reports whether a schema exists for eventType at version.
func (v *Validator) Known(eventType string, version int) bool {
	_, ok := v.schemas[key{eventType, version}]
	return ok
}

// Validate checks raw, a whole JSON envelope, against the schema of eventType at version.
// It returns an error wrapping ErrUnknownEvent when there is no such schema.
func (v *Validator) Validate(eventType string, version int, raw []byte) error {
	sch, ok := v.schemas[key{eventType, version}]
	if !ok {
		return fmt.Errorf("validate %s v%d: %w", eventType, version, ErrUnknownEvent)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("validate %s v%d: parse: %w", eventType, version, err)
	}
	if err := sch.Validate(doc); err != nil {
		return fmt.Errorf("validate %s v%d: %w", eventType, version, err)
	}
	return nil
}

// parseName splits <EventType>.v<N>.json.
func parseName(name string) (key, error) {
	base, _ := strings.CutSuffix(name, ".json")
	eventType, v, ok := strings.Cut(base, ".v")
	version, err := strconv.Atoi(v)
	if !ok || eventType == "" || err != nil || version < 1 {
		return key{}, fmt.Errorf("schema file %s: name is not <EventType>.v<N>.json", name)
	}
	return key{eventType, version}, nil
}
