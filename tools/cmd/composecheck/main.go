// Command composecheck loads docker-compose.yml with compose-go, the loader inside
// `docker compose`, and fails on what `docker compose config -q` would reject: YAML
// errors, schema violations, bad interpolation, unknown references. make test uses it
// where the docker client has no compose plugin (no Docker engine is needed either way).
// Variables come from the environment and, like docker compose, from the .env next to the file,
// or from -env-file instead (docker compose --env-file).
//
//	go run ./cmd/composecheck ../docker-compose.yml
//	go run ./cmd/composecheck -env-file /tmp/compose.env ../docker-compose.yml
//	go run ./cmd/composecheck ../docker-compose.yml ../docker-compose.cluster.yml
//
// Several files are one project, each over the ones before it (docker compose -f a -f b).
//
// -print writes the loaded project (interpolated, normalized: what `docker compose config`
// prints) to stdout instead, e.g. to diff the meaning of two versions of the file.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("composecheck", flag.ContinueOnError)
	envFile := fs.String("env-file", "", "variables to interpolate (default: the .env next to the file, if any)")
	print := fs.Bool("print", false, "print the loaded project as YAML")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("usage: composecheck [-env-file FILE] path/to/docker-compose.yml [overlay.yml ...]")
	}
	// Several files make one project, the later ones over the earlier (docker compose -f a -f b).
	var paths []string
	for _, a := range fs.Args() {
		p, err := filepath.Abs(a)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	path := paths[0]
	var envFiles []string
	if *envFile != "" {
		envFiles = append(envFiles, *envFile)
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(filepath.Dir(path)), cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	if err != nil {
		return fmt.Errorf("options: %w", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return fmt.Errorf("load %s: %w", strings.Join(fs.Args(), " + "), err)
	}
	if *print {
		out, err := project.MarshalYAML()
		if err != nil {
			return fmt.Errorf("print %s: %w", strings.Join(fs.Args(), " + "), err)
		}
		_, err = os.Stdout.Write(out)
		return err
	}
	fmt.Printf("%s: valid (project %q, %d services)\n", strings.Join(fs.Args(), " + "), project.Name, len(project.Services))
	return nil
}
