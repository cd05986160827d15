package schemas

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Generator makes random events that match their schemas, for property tests and fuzzing: it
// reads the schema documents themselves (type, const, enum, format, pattern, minLength,
// maxLength, minimum, maximum, minItems, maxItems, uniqueItems, required), so a bound added to a
// schema is exercised without touching the generator. With Extreme set it favours the edges: the
// longest strings (multi-byte characters included), the largest numbers, the most items.
//
// It knows the patterns the schemas use (see patterns); a schema with a pattern it does not know
// makes Event fail, so that a test notices.
type Generator struct {
	docs    map[key]map[string]any
	rand    *rand.Rand
	Extreme bool
}

// NewGenerator returns a Generator seeded with seed (the same seed gives the same events).
func NewGenerator(seed uint64) (*Generator, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	g := &Generator{docs: make(map[key]map[string]any, len(names)), rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for _, name := range names {
		k, err := parseName(name)
		if err != nil {
			return nil, err
		}
		raw, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // bounds up to 10^18 are exact as json.Number, not always as float64
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", name, err)
		}
		g.docs[k] = doc
	}
	return g, nil
}

// EventTypes returns every event type and version that has a schema, sorted by type.
func (g *Generator) EventTypes() []struct {
	Type    string
	Version int
} {
	var out []struct {
		Type    string
		Version int
	}
	for k := range g.docs {
		out = append(out, struct {
			Type    string
			Version int
		}{k.eventType, k.version})
	}
	slices.SortFunc(out, func(a, b struct {
		Type    string
		Version int
	}) int {
		return strings.Compare(a.Type, b.Type)
	})
	return out
}

// Event returns the JSON of a random envelope of eventType at version that its schema accepts.
func (g *Generator) Event(eventType string, version int) ([]byte, error) {
	doc, ok := g.docs[key{eventType, version}]
	if !ok {
		return nil, fmt.Errorf("generate %s v%d: %w", eventType, version, ErrUnknownEvent)
	}
	v, err := g.value(doc, "")
	if err != nil {
		return nil, fmt.Errorf("generate %s v%d: %w", eventType, version, err)
	}
	return json.Marshal(v)
}

// value generates a value for the schema node s at path.
func (g *Generator) value(s map[string]any, path string) (any, error) {
	if c, ok := s["const"]; ok {
		return c, nil
	}
	if e, ok := s["enum"].([]any); ok {
		return e[g.rand.IntN(len(e))], nil
	}
	switch s["type"] {
	case "object":
		return g.object(s, path)
	case "array":
		return g.array(s, path)
	case "string":
		return g.str(s, path)
	case "integer":
		return g.integer(s), nil
	default:
		return nil, fmt.Errorf("%s: cannot generate type %v", path, s["type"])
	}
}

func (g *Generator) object(s map[string]any, path string) (any, error) {
	props, _ := s["properties"].(map[string]any)
	required := map[string]bool{}
	for _, r := range asSlice(s["required"]) {
		required[r.(string)] = true
	}
	out := make(map[string]any, len(props))
	for name, p := range props {
		if !required[name] && !g.Extreme && g.rand.IntN(2) == 0 {
			continue
		}
		v, err := g.value(p.(map[string]any), path+"/"+name)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

func (g *Generator) array(s map[string]any, path string) (any, error) {
	lo, hi := intOr(s["minItems"], 0), intOr(s["maxItems"], 8)
	n := g.between(lo, hi)
	items, _ := s["items"].(map[string]any)
	unique, _ := s["uniqueItems"].(bool)
	out := make([]any, 0, n)
	seen := map[string]bool{}
	for tries := 0; len(out) < n && tries < 100*n; tries++ {
		v, err := g.value(items, path+"/items")
		if err != nil {
			return nil, err
		}
		// Items that name a SKU are made distinct even without uniqueItems: an order
		// has one line per SKU.
		id := fmt.Sprint(v)
		if m, ok := v.(map[string]any); ok && m["sku"] != nil {
			id = fmt.Sprint(m["sku"])
		} else if !unique {
			id = fmt.Sprint(len(out))
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, v)
	}
	if len(out) < lo {
		return nil, fmt.Errorf("%s: could not make %d distinct items", path, lo)
	}
	return out, nil
}

func (g *Generator) integer(s map[string]any) int64 {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if n, ok := s["minimum"].(json.Number); ok {
		lo, _ = n.Int64()
	}
	if n, ok := s["maximum"].(json.Number); ok {
		hi, _ = n.Int64()
	}
	if g.Extreme {
		switch g.rand.IntN(3) {
		case 0:
			return hi
		case 1:
			return lo
		}
	}
	if span := uint64(hi) - uint64(lo); span < math.MaxUint64 {
		return lo + int64(g.rand.Uint64N(span+1))
	}
	return int64(g.rand.Uint64())
}

// patterns generates a string for each pattern the schemas use, given the length bounds.
var patterns = map[string]func(g *Generator, lo, hi int) string{
	`^[A-Z]{3}$`:                      func(g *Generator, _, _ int) string { return g.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3) },
	`^[A-Za-z0-9._-]{1,64}$`:          func(g *Generator, _, _ int) string { return g.chars(skuChars, g.between(1, 64)) },
	`^[0-9a-f]{32}$`:                  func(g *Generator, _, _ int) string { return g.chars("0123456789abcdef", 32) },
	`^[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$`: func(g *Generator, lo, hi int) string { return g.printable(g.between(max(lo, 1), hi)) },
	`(Z|\+00:00)$`:                    func(g *Generator, _, _ int) string { return g.dateTime() },
}

// idempotencyKey matches the pattern of every envelope's idempotencyKey.
var idempotencyKey = regexp.MustCompile(`^\^\.\+#(\w+)#(\d+)\$$`)

const skuChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

func (g *Generator) str(s map[string]any, path string) (any, error) {
	lo, hi := intOr(s["minLength"], 0), intOr(s["maxLength"], 40)
	if f, _ := s["format"].(string); f == "uuid" {
		return g.uuid(), nil
	}
	if p, ok := s["pattern"].(string); ok {
		if gen, ok := patterns[p]; ok {
			return gen(g, lo, hi), nil
		}
		if m := idempotencyKey.FindStringSubmatch(p); m != nil {
			return g.uuid() + "#" + m[1] + "#" + m[2], nil
		}
		return nil, fmt.Errorf("%s: no generator for pattern %q", path, p)
	}
	return g.printable(g.between(lo, hi)), nil
}

// between returns a length from lo to hi, hi more often in Extreme mode.
func (g *Generator) between(lo, hi int) int {
	if g.Extreme && g.rand.IntN(2) == 0 {
		return hi
	}
	return lo + g.rand.IntN(hi-lo+1)
}

func (g *Generator) chars(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rand.IntN(len(alphabet))]
	}
	return string(b)
}

// printableRunes mixes ASCII with characters that take two, three and four bytes in UTF-8 and
// ones that JSON escapes or that HTML-safe encoders rewrite.
var printableRunes = []rune("aZ09 -_.\"\\/<>&'{}[]:,é한국어😀€ßΩ\u0301")

func (g *Generator) printable(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		r := printableRunes[g.rand.IntN(len(printableRunes))]
		if i == 0 && unicode.Is(unicode.M, r) { // a combining mark is printable but not first
			r = 'x'
		}
		b.WriteRune(r)
	}
	s := b.String()
	if utf8.RuneCountInString(s) != n {
		panic("printable: wrong length")
	}
	return s
}

func (g *Generator) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rand.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (g *Generator) dateTime() string {
	t := time.Unix(g.rand.Int64N(4102444800), g.rand.Int64N(1e9)).UTC()
	return t.Format(time.RFC3339Nano)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func intOr(v any, def int) int {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return int(i)
		}
	}
	return def
}
