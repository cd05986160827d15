package schemas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The compatibility rule of the event schemas (docs/architecture.md, "The order is
// event-sourced"): a newer version of an event type, compared with every older one,
//   - keeps the envelope as it is, but for eventVersion (its own number) and the idempotency
//     key's pattern (which ends in that number);
//   - keeps every field of data, with exactly the same schema (no type, bound or enum changed);
//   - requires exactly the fields the older one requires (a new field is optional, none stops
//     being required);
//   - may add optional fields to data, and nothing else (additionalProperties and every other
//     keyword of data unchanged).
// So a consumer that knows the newer version reads any older event as a newer one without a
// field (messaging/upcast), and a consumer that knows only the older version can be told apart by
// the version number (it dead-letters what it does not know). Consumers are deployed first.

// compatible returns the breaches of the rule by newer against older (both whole schema
// documents of one event type), none when it holds.
func compatible(older, newer map[string]any, olderVersion, newerVersion int) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	op, np := props(older), props(newer)
	for name := range op {
		if _, ok := np[name]; !ok {
			bad("envelope field %q removed", name)
		}
	}
	for name := range np {
		if _, ok := op[name]; !ok {
			bad("envelope field %q added", name)
		}
	}
	if !sameSet(older["required"], newer["required"]) {
		bad("the envelope's required fields changed")
	}
	for name, o := range op {
		n, ok := np[name]
		if !ok {
			continue
		}
		switch name {
		case "eventVersion":
			if !reflect.DeepEqual(n, map[string]any{"const": float64(newerVersion)}) {
				bad("eventVersion of v%d is not the const %d", newerVersion, newerVersion)
			}
		case "idempotencyKey":
			ok, nk := o.(map[string]any), n.(map[string]any)
			want := strings.Replace(fmt.Sprint(ok["pattern"]), "#"+strconv.Itoa(olderVersion)+"$", "#"+strconv.Itoa(newerVersion)+"$", 1)
			if nk["pattern"] != want || !reflect.DeepEqual(without(ok, "pattern"), without(nk, "pattern")) {
				bad("idempotencyKey changed beyond its version number")
			}
		case "data":
			out = append(out, compatibleData(o.(map[string]any), n.(map[string]any))...)
		default:
			if !reflect.DeepEqual(o, n) {
				bad("envelope field %q changed", name)
			}
		}
	}
	for k := range older {
		if k != "properties" && k != "required" && k != "$id" && k != "title" && k != "description" && !reflect.DeepEqual(older[k], newer[k]) {
			bad("the envelope's %q changed", k)
		}
	}
	return out
}

// compatibleData checks the rule on the data object.
func compatibleData(older, newer map[string]any) []string {
	var out []string
	op, np := props(older), props(newer)
	for name, o := range op {
		n, ok := np[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("data field %q removed", name))
		case !reflect.DeepEqual(o, n):
			out = append(out, fmt.Sprintf("data field %q changed", name))
		}
	}
	if !sameSet(older["required"], newer["required"]) {
		out = append(out, fmt.Sprintf("data's required fields changed: %v → %v (a new field must be optional)", older["required"], newer["required"]))
	}
	for k := range merged(older, newer) {
		if k != "properties" && k != "required" && k != "description" && !reflect.DeepEqual(older[k], newer[k]) {
			out = append(out, fmt.Sprintf("data's %q changed", k))
		}
	}
	return out
}

func props(doc map[string]any) map[string]any {
	p, _ := doc["properties"].(map[string]any)
	return p
}

func without(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func merged(a, b map[string]any) map[string]struct{} {
	out := make(map[string]struct{})
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

func sameSet(a, b any) bool {
	as, bs := strs(a), strs(b)
	sort.Strings(as)
	sort.Strings(bs)
	return reflect.DeepEqual(as, bs)
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// TestEveryVersionPairIsCompatible checks the rule over every pair of versions of every event
// type under schemas/ (older, newer), and that each type's versions run 1, 2, … without a gap.
func TestEveryVersionPairIsCompatible(t *testing.T) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	versions := make(map[string]map[int]map[string]any)
	for _, name := range names {
		k, err := parseName(name)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if versions[k.eventType] == nil {
			versions[k.eventType] = make(map[int]map[string]any)
		}
		versions[k.eventType][k.version] = doc
	}
	pairs := 0
	for eventType, byVersion := range versions {
		for v := 1; v <= len(byVersion); v++ {
			if byVersion[v] == nil {
				t.Errorf("%s: versions %v do not run from 1 without a gap", eventType, keys(byVersion))
			}
		}
		for a := 1; a <= len(byVersion); a++ {
			for b := a + 1; b <= len(byVersion); b++ {
				pairs++
				t.Run(fmt.Sprintf("%s v%d→v%d", eventType, a, b), func(t *testing.T) {
					for _, breach := range compatible(byVersion[a], byVersion[b], a, b) {
						t.Error(breach)
					}
				})
			}
		}
	}
	if pairs == 0 {
		t.Fatal("no event type has two versions: the rule was checked on nothing")
	}
}

func keys(m map[int]map[string]any) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// TestCompatibilityRule: the rule itself, on versions made from OrderCreated v1: adding an
// optional field passes; adding a required one, removing, retyping or tightening a field,
// opening data to any field, or changing the envelope beyond its version number does not.
func TestCompatibilityRule(t *testing.T) {
	raw, err := files.ReadFile("OrderCreated.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	v1 := func() map[string]any {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	next := func(change func(doc, data map[string]any)) map[string]any {
		doc := v1()
		p := props(doc)
		p["eventVersion"] = map[string]any{"const": float64(2)}
		p["idempotencyKey"].(map[string]any)["pattern"] = "^.+#OrderCreated#2$"
		change(doc, p["data"].(map[string]any))
		return doc
	}
	tests := []struct {
		name   string
		change func(doc, data map[string]any)
		ok     bool
	}{
		{"only the version", func(map[string]any, map[string]any) {}, true},
		{"an optional field added", func(_, data map[string]any) {
			props(data)["channel"] = map[string]any{"type": "string", "enum": []any{"web"}}
		}, true},
		{"a required field added", func(_, data map[string]any) {
			props(data)["channel"] = map[string]any{"type": "string"}
			data["required"] = append(data["required"].([]any), "channel")
		}, false},
		{"a field removed", func(_, data map[string]any) { delete(props(data), "currency") }, false},
		{"a field no longer required", func(_, data map[string]any) { data["required"] = data["required"].([]any)[1:] }, false},
		{"a field retyped", func(_, data map[string]any) { props(data)["amount"] = map[string]any{"type": "string"} }, false},
		{"a bound tightened", func(_, data map[string]any) { props(data)["customerId"].(map[string]any)["maxLength"] = float64(64) }, false},
		{"data open to any field", func(_, data map[string]any) { data["additionalProperties"] = true }, false},
		{"an envelope field changed", func(doc, _ map[string]any) { props(doc)["traceId"] = map[string]any{"type": "string"} }, false},
		{"the version not bumped", func(doc, _ map[string]any) { props(doc)["eventVersion"] = map[string]any{"const": float64(1)} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			breaches := compatible(v1(), next(tt.change), 1, 2)
			if (len(breaches) == 0) != tt.ok {
				t.Fatalf("breaches = %v, want compatible = %v", breaches, tt.ok)
			}
		})
	}
}
