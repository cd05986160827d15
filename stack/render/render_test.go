package render_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"outboxsaga.dev/stack/render"
)

// TestCommittedFilesAreRendered fails, naming the file and its first differing line, when a
// committed file is not what the table renders: someone edited a rendered file by hand, or the
// table or a template changed without `go generate ./...` in stack/.
func TestCommittedFilesAreRendered(t *testing.T) {
	files, err := render.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("Files() rendered nothing")
	}
	for _, f := range files {
		committed, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(f.Path)))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./... in stack/)", f.Path, err)
			continue
		}
		if line, got, want, differ := firstDiff(committed, f.Data); differ {
			t.Errorf("%s:%d differs from its render (edit the table or stack/render/templates, then go generate ./... in stack/):\n  committed: %q\n  rendered:  %q",
				f.Path, line, got, want)
		}
	}
}

// firstDiff returns the first line (1-based) where a and b differ, and that line of each.
func firstDiff(a, b []byte) (line int, la, lb string, differ bool) {
	sa, sb := bufio.NewScanner(bytes.NewReader(a)), bufio.NewScanner(bytes.NewReader(b))
	sa.Buffer(nil, 1<<20)
	sb.Buffer(nil, 1<<20)
	for line = 1; ; line++ {
		oka, okb := sa.Scan(), sb.Scan()
		if !oka && !okb {
			if !bytes.Equal(a, b) { // only the final newline differs
				return line, "", "", true
			}
			return 0, "", "", false
		}
		if oka != okb || sa.Text() != sb.Text() {
			return line, sa.Text(), sb.Text(), true
		}
	}
}

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct {
		a, b   string
		line   int
		differ bool
	}{
		{"x\ny\n", "x\ny\n", 0, false},
		{"x\ny\n", "x\nz\n", 2, true},
		{"x\n", "x\ny\n", 2, true},
		{"x\n", "x", 2, true},
	} {
		line, _, _, differ := firstDiff([]byte(tc.a), []byte(tc.b))
		if line != tc.line || differ != tc.differ {
			t.Errorf("firstDiff(%q, %q) = %d, %v; want %d, %v", tc.a, tc.b, line, differ, tc.line, tc.differ)
		}
	}
}
