// Command stack supervises the native stack's processes (tools/supervisor): it starts,
// identifies, heals and stops PostgreSQL, Kafka, Kafka Connect, the Go programs, Alertmanager
// and Prometheus. It reads scripts/lib.sh's settings from its environment, so it is run through
// the scripts (scripts/lib.sh's supervise; make up, make down, make status):
//
//	stack up                     start what does not run, register the connectors, wait for /readyz
//	stack start <component>...   start (or heal) these components
//	stack stop [component...]    stop these (default: all), in the reverse start order
//	stack down                   stop everything
//	stack status                 make status: processes, services, connectors, slots, groups, alerts
//	stack processes              one line per component: pid, up or down, RSS
//	stack secrets                make what is missing of the stack's secrets and client logins
//	stack env                    the credentials, as bash export statements (scripts/lib.sh evals them)
//	stack connectors [file...]   register (or update) the connectors, wait until RUNNING
//	stack kafka-setup [-if-changed]  the broker's logins, ACLs and topics
//	stack injector on|off        the test-only Kafka principal's login and ACLs
//	stack clean [data]           stop everything, delete .stack, the PostgreSQL cluster and bin/
//	                             (data: keep .stack/logs, .stack/lib and bin/)
//	stack compose-env [--print]  write or complete .env for docker compose (--print: a fresh set)
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
	"path/filepath"
	"syscall"

	"outboxsaga.dev/tools/supervisor"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: stack [-root DIR] up|down|status|processes|running|start C...|stop [C...]|kill C|pid C|secrets|env|connectors [F...]|kafka-setup [-if-changed]|injector on|off|clean [data]|compose-env [--print]")

// composeEnv writes or completes the checkout's .env (or, with --print, prints a fresh set).
func composeEnv(root string, args []string) error {
	if len(args) == 1 && args[0] == "--print" {
		text, err := supervisor.ComposeEnvFresh(root)
		if err != nil {
			return err
		}
		fmt.Print(text)
		return nil
	}
	added, total, err := supervisor.ComposeEnv(root, filepath.Join(root, ".env"))
	if err != nil {
		return err
	}
	fmt.Printf("\033[1m==>\033[0m .env: %d secrets added, %d in all (mode 600)\n", added, total)
	return nil
}

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
	if cmd == "compose-env" {
		return composeEnv(*root, names)
	}
	if cmd == "pid" || cmd == "running" || cmd == "processes" || cmd == "env" {
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
		if err := s.EnsureSecrets(); err != nil {
			return err
		}
		return s.Up(ctx)
	case "start":
		if len(names) == 0 {
			return errUsage
		}
		if err := s.EnsureSecrets(); err != nil {
			return err
		}
		return s.Start(ctx, names...)
	case "stop", "down":
		return s.Stop(ctx, names...)
	case "status":
		s.Report(ctx, os.Stdout)
		return nil
	case "processes":
		s.Status(os.Stdout)
		return nil
	case "secrets":
		return s.EnsureSecrets()
	case "env":
		kvs, err := s.Credentials()
		if err != nil {
			return err
		}
		fmt.Print(supervisor.ShellExports(kvs))
		return nil
	case "connectors":
		return s.RegisterConnectors(ctx, names...)
	case "kafka-setup":
		return s.SetupKafka(ctx, len(names) == 1 && names[0] == "-if-changed")
	case "injector":
		if len(names) != 1 || (names[0] != "on" && names[0] != "off") {
			return errUsage
		}
		return s.Injector(ctx, names[0] == "on")
	case "clean":
		return s.Clean(ctx, len(names) == 1 && names[0] == "data")
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
