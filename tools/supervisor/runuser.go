package supervisor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// The stack's OS user. Run as root, make up starts Kafka, Kafka Connect, Prometheus, Alertmanager
// and the Go programs as an unprivileged OS user, STACK_USER (default outbox-saga, a system user
// without a home or a shell, made on first use), never as root; PostgreSQL runs as the postgres
// OS user. That user may enter .stack (0710) but list nothing in it, read the jars, the binaries
// and its components' configuration (group-readable, owned by root), and write only its
// components' data directories (owned by it; root never writes in them, so a symlink planted
// there leads root nowhere). The secrets stay root's (.stack/secrets, 0700): a program gets its
// own through its environment. STACK_USER=root keeps everything root's; a checkout the user
// cannot read (one in root's 0700 home) does too, with a warning.

// runUserReady, when root, makes the stack's OS user and what it must reach, and sets RUN_USER
// and RUN_GROUP in the configuration (what the components run as). Idempotent.
func (s *Stack) runUserReady() error {
	name := s.stackUser()
	if os.Getuid() != 0 || name == "root" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("could not make the OS user %s (useradd: %s); STACK_USER=root runs the stack as root", name, out)
		}
		if u, err = user.Lookup(name); err != nil {
			return err
		}
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return fmt.Errorf("OS group of %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	probe := exec.Command("test", "-r", filepath.Join(s.cfg.Root, "infra/kafka/log4j2.properties"))
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	if probe.Run() != nil {
		if !s.warnedRunUser {
			fmt.Fprintf(s.cfg.Err, "\033[33mwarning:\033[0m the OS user %s cannot read this checkout (%s): the stack runs as root. Clone it where other users can read it, or set STACK_USER=root to silence this.\n", name, s.cfg.Root)
		}
		s.warnedRunUser = true
		return nil
	}
	if err := os.Lchown(s.cfg.StackDir, -1, gid); err != nil {
		return err
	}
	if err := os.Chmod(s.cfg.StackDir, 0o710); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.cfg.Root, "bin"), 0o700); err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(s.cfg.Root, "bin"), filepath.Join(s.cfg.StackDir, "lib")} {
		if err := groupReadable(d, gid); err != nil {
			return err
		}
	}
	s.cfg.Env["RUN_USER"], s.cfg.Env["RUN_GROUP"] = name, g.Name
	return nil
}

// groupReadable gives dir and everything in it to group gid, readable (u=rwX,g=rX,o=), as
// chgrp -R and chmod -R do (links are not followed).
func groupReadable(dir string, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o640)
		if fi.IsDir() || fi.Mode()&0o100 != 0 {
			mode = 0o750
		}
		return os.Chmod(p, mode)
	})
}

// preparePrograms builds the Go programs named into bin/ (SERVICES_NO_BUILD=1: the missing ones
// only; the chaos tool restarts killed services so) and what a program needs of its own: the
// webhook sink keeps what it received in a directory of the stack's OS user's.
func (s *Stack) preparePrograms(ctx context.Context, names []string) error {
	noBuild := s.cfg.get("SERVICES_NO_BUILD") == "1"
	if !noBuild {
		s.out.say("building services")
	}
	for _, n := range names {
		bin := filepath.Join(s.cfg.Root, "bin", n)
		if noBuild && exists(bin) {
			continue
		}
		if err := BuildProgram(ctx, s.cfg.Root, n); err != nil {
			return err
		}
	}
	for _, d := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(s.cfg.StackDir, d), 0o700); err != nil {
			return err
		}
	}
	if err := s.runUserReady(); err != nil {
		return err
	}
	if slices.Contains(names, "webhooksink") {
		return s.ownedByRunUser(filepath.Join(s.cfg.StackDir, "webhooksink"))
	}
	return nil
}

// BuildProgram builds the Go program name (services/<name>/cmd/<name>) into root/bin/<name>.
func BuildProgram(ctx context.Context, root, name string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(root, "bin", name), "./cmd/"+name)
	cmd.Dir = filepath.Join(root, "services", name)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build of %s failed: %w", name, err)
	}
	return nil
}
