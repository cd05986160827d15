// Command render writes the files that package render renders from the stack's table, under the
// repository's root (-root, default ..: `go generate ./...` runs it in stack/).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"outboxsaga.dev/stack/render"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", "..", "the repository's root")
	flag.Parse()
	files, err := render.Files()
	if err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(*root, filepath.FromSlash(f.Path))
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		mode := os.FileMode(0o644)
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
		if err := os.WriteFile(path, f.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		fmt.Println("render: wrote", f.Path)
	}
	return nil
}
