// Command stack supervises the native stack's processes (tools/supervisor): it starts,
// identifies, heals and stops PostgreSQL, Kafka, Kafka Connect, the Go programs, Alertmanager
// and Prometheus. It reads scripts/lib.sh's settings from its environment, so it is run through
// the scripts (scripts/lib.sh's supervise; make up, make down, make status):
//
//	stack up                     start what does not run, register the connectors, wait for /readyz
//	stack start <component>...   start (or heal) these components
//	stack stop [component...]    stop these (default: all), in the reverse start order
//	stack down                   stop everything
//	stack status                 one line per component: pid, up or down, RSS
//	stack kill <component>       SIGKILL it and return at once (as kill -9 does)
//	stack pid <component>        its pid, when it runs (exit status 1 when it does not)
//	stack running                the components that run, one a line
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"outboxsaga.dev/tools/supervisor"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: stack [-root DIR] up|down|status|running|start C...|stop [C...]|kill C|pid C")

func run() error {
	root := flag.String("root", ".", "the repository")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		return errUsage
	}
	cfg, err := supervisor.ConfigFromEnv(*root, os.Environ())
	if err != nil {
		return err
	}
	cmd, names := args[0], args[1:]
	if cmd == "pid" || cmd == "running" || cmd == "status" {
		cfg.Out = os.Stderr // what they print is the answer; a pid file recorded again is a remark
	}
	s := supervisor.New(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	one := func() (string, error) {
		if len(names) != 1 {
			return "", errUsage
		}
		return names[0], nil
	}
	switch cmd {
	case "up":
		return s.Up(ctx)
	case "start":
		if len(names) == 0 {
			return errUsage
		}
		return s.Start(ctx, names...)
	case "stop", "down":
		return s.Stop(ctx, names...)
	case "status":
		s.Status(os.Stdout)
		return nil
	case "running":
		for _, n := range s.Names() {
			if _, ok, _ := s.Running(n); ok {
				fmt.Println(n)
			}
		}
		return nil
	case "kill":
		n, err := one()
		if err != nil {
			return err
		}
		_, err = s.Kill(n)
		return err
	case "pid":
		n, err := one()
		if err != nil {
			return err
		}
		id, ok, err := s.Running(n)
		if err != nil {
			return err
		}
		if !ok {
			os.Exit(1)
		}
		fmt.Println(id.Pid)
		return nil
	}
	return errUsage
}
