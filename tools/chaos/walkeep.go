package chaos

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MaxSlotWALKeep reads max_slot_wal_keep_size (e.g. "2GB") from postgresql.conf, in bytes.
func MaxSlotWALKeep(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(k) != "max_slot_wal_keep_size" {
			continue
		}
		return parseSize(strings.Trim(strings.TrimSpace(strings.SplitN(v, "#", 2)[0]), "'"))
	}
	return 0, fmt.Errorf("%s sets no max_slot_wal_keep_size", path)
}

// parseSize parses a Postgres size such as 2GB, 512MB or 64kB (a bare number is MB).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return v << 20, nil
}
