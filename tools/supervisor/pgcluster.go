package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/supervisor/postgres"
)

// The stack's private PostgreSQL cluster: where it lives (PG_DIR, see scripts/lib.sh), how it is
// made (pgCreate: initdb and our configuration, nothing started), made ready once its server
// answers (pgInit: the service databases and roles) and deleted (pgClean, make clean).
//
// Run as root, the server runs as the OS user PG_OS_USER, which must be able to enter every
// directory above its data directory: a checkout in root's home (0700) is out of its reach, so
// the cluster lives in /var/lib/outbox-saga/pg-<hash of the stack's path> (.stack/pg links to
// it). Every file in the cluster's directory is written by that user, never by root: that user
// owns the directory and could put a symlink where root would write (pgWrite).

// outsideStack reports whether the cluster lives outside .stack (run as root).
func (s *Stack) outsideStack() bool {
	return s.cfg.get("PG_DIR") != filepath.Join(s.cfg.StackDir, "pg")
}

// asPGUser returns name args as a command of the PostgreSQL OS user when we are root (from /,
// with an environment of its own: ours holds the stack's secrets, and that user can read the
// environment of its processes), else as ours.
func (s *Stack) asPGUser(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if os.Getuid() != 0 {
		return cmd, nil
	}
	cred, err := s.credential(s.cfg.get("PG_OS_USER"))
	if err != nil {
		return nil, err
	}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd, nil
}

// runAsPGUser runs name args as the PostgreSQL OS user with stdin, and returns its output.
func (s *Stack) runAsPGUser(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd, err := s.asPGUser(ctx, name, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s (as %s): %w: %s", name, strings.Join(args, " "), s.cfg.get("PG_OS_USER"), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// pgWrite writes content to file as the PostgreSQL OS user (replacing it; appending when
// appendTo): root never writes in the cluster's directory.
func (s *Stack) pgWrite(ctx context.Context, file, content string, appendTo bool) error {
	script := `umask 077; rm -f "$1"; cat > "$1"`
	if appendTo {
		script = `umask 077; cat >> "$1"`
	}
	_, err := s.runAsPGUser(ctx, strings.NewReader(content), "sh", "-c", script, "sh", file)
	return err
}

// makePGDir creates PG_DIR (0700, the server's OS user's); outside .stack it also writes which
// stack it belongs to, and links .stack/pg and .stack/logs/postgres.log to it.
func (s *Stack) makePGDir(ctx context.Context) error {
	dir, logs := s.cfg.get("PG_DIR"), filepath.Join(s.cfg.StackDir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return err
	}
	if s.outsideStack() {
		base := filepath.Dir(dir)
		if _, err := os.Stat(base); os.IsNotExist(err) {
			if err := os.MkdirAll(base, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(base, 0o755); err != nil {
				return err
			}
		}
		var st syscall.Stat_t
		if err := syscall.Stat(base, &st); err != nil || st.Uid != 0 {
			return fmt.Errorf("%s is not owned by root; it holds the clusters of every stack run as root. Remove it, or choose another directory: PG_DIR_BASE=<dir>", base)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for link, target := range map[string]string{filepath.Join(s.cfg.StackDir, "pg"): dir, filepath.Join(logs, "postgres.log"): s.cfg.get("PG_LOG")} {
			_ = os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				return err
			}
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if os.Getuid() == 0 {
		cred, err := s.credential(s.cfg.get("PG_OS_USER"))
		if err != nil {
			return err
		}
		if err := os.Lchown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	if _, err := s.runAsPGUser(ctx, nil, "test", "-w", dir); err != nil {
		return fmt.Errorf("the %s OS user cannot write %s (a directory above it is not open to that user); choose another place: PG_DIR_BASE=<dir>", s.cfg.get("PG_OS_USER"), dir)
	}
	if s.outsideStack() {
		return s.pgWrite(ctx, filepath.Join(dir, "stack"), s.cfg.StackDir+"\n", false)
	}
	return nil
}

// pgCreate makes a new cluster (initdb, our configuration), not started. Until pgInit has run
// the cluster is not finished (the file "creating" says so): a start that finds the marker makes
// it again (an interrupted first make up must not leave a cluster without roles).
func (s *Stack) pgCreate(ctx context.Context) error {
	dir, data, log := s.cfg.get("PG_DIR"), s.cfg.get("PG_DATA"), s.cfg.get("PG_LOG")
	if exists(filepath.Join(dir, "creating")) {
		if err := os.RemoveAll(data); err != nil {
			return err
		}
	}
	s.out.say("creating PostgreSQL cluster in %s", data)
	if err := s.makePGDir(ctx); err != nil {
		return err
	}
	for _, f := range []string{filepath.Join(dir, "creating"), log} {
		if _, err := s.runAsPGUser(ctx, nil, "touch", f); err != nil {
			return err
		}
	}
	pw := filepath.Join(dir, "superuser-password")
	if err := s.pgWrite(ctx, pw, s.cfg.get("PG_SUPERPASS")+"\n", false); err != nil {
		return err
	}
	initdb, err := pgBin("initdb")
	if err != nil {
		return err
	}
	super := s.cfg.get("PG_SUPERUSER")
	if super == "" {
		super = "postgres"
	}
	out, initErr := s.runAsPGUser(ctx, nil, initdb, "-D", data, "-U", super, "--pwfile="+pw,
		"--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
	_, _ = s.runAsPGUser(ctx, nil, "rm", "-f", pw)
	if err := s.pgWrite(ctx, log, string(out), false); err != nil {
		return err
	}
	if initErr != nil {
		s.tail(log, 20)
		return fmt.Errorf("initdb failed (log: %s): %w", log, initErr)
	}
	conf, err := os.ReadFile(filepath.Join(s.cfg.Root, "infra/postgres/postgresql.conf"))
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "run")
	extra := fmt.Sprintf("\n# ---- outbox-saga native stack (infra/postgres/postgresql.conf) ----\n%slisten_addresses = '%s'\nport = %s\nunix_socket_directories = '%s'\n",
		conf, s.cfg.get("PG_HOST"), s.cfg.get("PG_PORT"), sock)
	if err := s.pgWrite(ctx, filepath.Join(data, "postgresql.conf"), extra, true); err != nil {
		return err
	}
	// Our own pg_hba.conf (initdb's allows physical replication): passwords over TCP, no replication.
	hba, err := os.ReadFile(filepath.Join(s.cfg.Root, "infra/postgres/pg_hba.conf"))
	if err != nil {
		return err
	}
	if err := s.pgWrite(ctx, filepath.Join(data, "pg_hba.conf"), string(hba), false); err != nil {
		return err
	}
	if _, err := s.runAsPGUser(ctx, nil, "mkdir", "-p", "-m", "0700", sock); err != nil {
		return err
	}
	_, err = s.runAsPGUser(ctx, nil, "touch", log)
	return err
}

func (s *Stack) pgAdmin() postgres.Admin {
	super := s.cfg.get("PG_SUPERUSER")
	if super == "" {
		super = "postgres"
	}
	return postgres.Admin{Host: s.cfg.get("PG_HOST"), Port: s.cfg.port("PG_PORT"), User: super, Password: s.cfg.get("PG_SUPERPASS")}
}

// pgInit, once the server answers: the service databases and their roles, with this stack's
// passwords (infra/postgres/init.sh; idempotent, so a database added to the table is made at the
// next start), skipped when nothing it reads changed since it last ran on this cluster; then the
// cluster is finished.
func (s *Stack) pgInit(ctx context.Context) error {
	dir := s.cfg.get("PG_DIR")
	if err := s.pgAdmin().LogReplicationCommands(ctx); err != nil {
		return err
	}
	var services []string
	for _, p := range stack.SagaServices() {
		services = append(services, p.Name)
	}
	h := sha256.New()
	for _, f := range []string{"infra/postgres/init.sql", "infra/postgres/init.sh"} {
		raw, err := os.ReadFile(filepath.Join(s.cfg.Root, f))
		if err != nil {
			return err
		}
		h.Write(raw)
	}
	fmt.Fprintln(h, strings.Join(services, " "))
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "PGHOST=" + s.cfg.get("PG_HOST"), "PGPORT=" + s.cfg.get("PG_PORT"),
		"PGUSER=" + s.pgAdmin().User, "PGPASSWORD=" + s.cfg.get("PG_SUPERPASS"), "PG_SERVICES=" + strings.Join(services, " ")}
	for _, r := range PGRoles() {
		pw := s.secret("pg-" + r)
		fmt.Fprintf(h, "%s %s\n", r, pw)
		env = append(env, upper(r)+"_PG_PASSWORD="+pw)
	}
	want, stamp := hex.EncodeToString(h.Sum(nil)), filepath.Join(dir, "init.sha256")
	if strings.TrimSpace(s.firstLine(stamp)) != want {
		cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.Root, "infra/postgres/init.sh"))
		cmd.Env, cmd.Stdout, cmd.Stderr = env, s.cfg.Out, s.cfg.Err
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("creating the service databases and roles failed (infra/postgres/init.sh): %w", err)
		}
		if err := s.pgWrite(ctx, stamp, want+"\n", false); err != nil {
			return err
		}
		s.out.line("    databases and roles: %s (infra/postgres/init.sql)", strings.Join(services, ", "))
	}
	_, err := s.runAsPGUser(ctx, nil, "rm", "-f", filepath.Join(dir, "creating"))
	return err
}

// pgClean stops the server and deletes the cluster. If .stack/pg points to a cluster made for
// another path (the checkout was moved), that one goes too, unless the stack at that path still
// uses it (the checkout was copied).
func (s *Stack) pgClean(ctx context.Context) error {
	if err := s.Stop(ctx, "postgres"); err != nil {
		return err
	}
	dir, link := s.cfg.get("PG_DIR"), filepath.Join(s.cfg.StackDir, "pg")
	if linked, err := os.Readlink(link); err == nil && linked != dir && exists(filepath.Join(linked, "stack")) {
		owner := strings.TrimSpace(s.firstLine(filepath.Join(linked, "stack")))
		if l, _ := os.Readlink(filepath.Join(owner, "pg")); l == linked {
			s.out.line("    keeping %s: it is the cluster of the stack in %s", linked, owner)
		} else {
			s.out.say("deleting the PostgreSQL cluster in %s", linked)
			if err := os.RemoveAll(linked); err != nil {
				return err
			}
		}
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		s.out.say("deleting the PostgreSQL cluster in %s", dir)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	_ = os.Remove(link)
	_ = os.Remove(filepath.Join(s.cfg.StackDir, "logs", "postgres.log"))
	return nil
}

// Clean stops the stack and deletes everything it wrote: .stack/ (data, logs, jars, pids,
// secrets), the PostgreSQL cluster and bin/. keepLogsAndJars keeps .stack/logs, .stack/lib and
// bin/: what make test does at its end to a stack it made from nothing.
func (s *Stack) Clean(ctx context.Context, keepLogsAndJars bool) error {
	home, _ := os.UserHomeDir()
	switch s.cfg.StackDir {
	case "/", s.cfg.Root, home:
		return fmt.Errorf("refusing to delete STACK_DIR=%s: it is not a stack directory", s.cfg.StackDir)
	}
	if err := s.Stop(ctx); err != nil {
		return err
	}
	if err := s.pgClean(ctx); err != nil {
		return err
	}
	rel := strings.TrimPrefix(s.cfg.StackDir, s.cfg.Root+"/")
	if !keepLogsAndJars {
		s.out.say("deleting %s and bin/", rel)
		if err := os.RemoveAll(s.cfg.StackDir); err != nil {
			return err
		}
		return os.RemoveAll(filepath.Join(s.cfg.Root, "bin"))
	}
	s.out.say("deleting the stack's data and secrets in %s (keeping logs/ and lib/)", rel)
	entries, err := os.ReadDir(s.cfg.StackDir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if e.Name() == "logs" || e.Name() == "lib" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.cfg.StackDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
