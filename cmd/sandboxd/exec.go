package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/internal/units"
	"github.com/sandboxd/sandboxd/rootfs"
	"github.com/sandboxd/sandboxd/runtime"
)

// exitSandboxFailed is the exit code when the sandbox itself failed (bad
// input, a command that can't start, an internal error), as with docker run.
const exitSandboxFailed = 125

// exitError carries an exit code through urfave/cli.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func execCommand() *cli.Command {
	d := runtime.DefaultLimits()
	return &cli.Command{
		Name:      "exec",
		Usage:     "run one command in a fresh sandbox and exit with its exit code",
		ArgsUsage: "-- CMD [ARGS...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory of the sandbox (mounted read-only)", Required: true},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one JSON object instead of passing output through"},
			&cli.StringFlag{Name: "memory", Value: "128MiB", Usage: "memory limit (swap is off)"},
			&cli.StringFlag{Name: "cpus", Value: "0.5", Usage: "CPU quota in cores"},
			&cli.StringFlag{Name: "pids", Value: strconv.FormatInt(d.Pids, 10), Usage: "maximum number of tasks (processes and threads)"},
			&cli.StringFlag{Name: "wall-time", Value: d.WallTime.String(), Usage: "wall-clock time limit"},
			&cli.StringFlag{Name: "cpu-time", Usage: "CPU time limit over all tasks (default: the wall time)"},
			&cli.StringFlag{Name: "output-limit", Value: "1MiB", Usage: "maximum bytes kept per output stream; more ends the run"},
			&cli.StringFlag{Name: "tmp-size", Value: "64MiB", Usage: "size of /tmp (tmpfs, noexec)"},
			&cli.StringFlag{Name: "work-size", Value: "64MiB", Usage: "size of /work (tmpfs, the working directory)"},
			&cli.StringFlag{Name: "file-size", Value: "16MiB", Usage: "largest file the program may write (RLIMIT_FSIZE)"},
			&cli.StringFlag{Name: "nofile", Value: strconv.FormatUint(d.OpenFiles, 10), Usage: "maximum open files (RLIMIT_NOFILE)"},
			&cli.StringFlag{Name: "stdin", Usage: "file to feed to the program's standard input (default: empty)"},
			&cli.StringFlag{Name: "files", Usage: "directory whose files are copied into /work before the start"},
			&cli.StringSliceFlag{Name: "env", Usage: "environment variable K=V for the program (repeatable)"},
			&cli.StringFlag{Name: "user", Value: "65534:65534", Usage: "UID[:GID] that runs the program (never 0)"},
			// Apart from the daemon's (/run/sandboxd, "sandboxd"): a daemon
			// starting up removes every sandbox it finds in its own.
			&cli.StringFlag{Name: "run-dir", Value: "/run/sandboxd-exec", Usage: "directory for sandbox state (should be tmpfs)"},
			&cli.StringFlag{Name: "cgroup-parent", Value: "sandboxd-exec", Usage: "cgroup under which sandboxes nest; relative to sandboxd's own cgroup unless absolute"},
			&cli.BoolFlag{Name: "no-userns", Usage: "run without a user namespace of its own (ids are then host ids)"},
			&cli.StringFlag{Name: "userns-range", Usage: "START:SIZE host ids for user namespaces (default: /etc/subuid's \"sandboxd\" entry, else 1073741824:33554432)"},
		},
		// One line, not the whole usage text, like every other input error.
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w (see sandboxd exec --help)", err)
		},
		Action: func(c *cli.Context) error {
			code, err := runExec(c)
			if err != nil {
				fmt.Fprintln(os.Stderr, "sandboxd exec:", oneLine(err))
				os.Exit(exitSandboxFailed)
			}
			os.Exit(code)
			return nil
		},
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func runExec(c *cli.Context) (int, error) {
	args := c.Args().Slice()
	if len(args) == 0 {
		return 0, errors.New("no command given: use sandboxd exec --rootfs DIR -- CMD [ARGS...]")
	}
	limits, err := limitsFromFlags(c)
	if err != nil {
		return 0, err
	}
	uid, gid, err := parseUser(c.String("user"))
	if err != nil {
		return 0, err
	}
	env, err := parseEnv(c.StringSlice("env"))
	if err != nil {
		return 0, err
	}
	var files []rootfs.File
	if dir := c.String("files"); dir != "" {
		if files, err = rootfs.FilesFromDir(dir); err != nil {
			return 0, err
		}
	}
	var stdin io.Reader
	if p := c.String("stdin"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return 0, fmt.Errorf("--stdin: %w", err)
		}
		stdin = bytes.NewReader(data)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer cancel()
	cfg := runtime.EngineConfig{RunDir: c.String("run-dir"), CgroupParent: c.String("cgroup-parent"), NoUserNamespace: c.Bool("no-userns")}
	if r := c.String("userns-range"); r != "" {
		if cfg.IDs, err = runtime.ParseIDRange(r); err != nil {
			return 0, fmt.Errorf("--userns-range: %w", err)
		}
	}
	engine, err := runtime.NewEngine(cfg)
	if err != nil {
		return 0, err
	}
	engine.ReapDead()
	sb, err := engine.Build(ctx, runtime.BuildOptions{Rootfs: c.String("rootfs"), UID: uid, GID: gid, Limits: limits})
	if err != nil {
		return 0, err
	}
	defer sb.Destroy()
	req := runtime.Request{Args: args, Env: env, Files: files, Stdin: stdin, Limits: limits}
	jsonOut := c.Bool("json")
	if !jsonOut {
		req.Stdout, req.Stderr = os.Stdout, os.Stderr
	}
	res, err := sb.Run(ctx, req)
	if err != nil {
		return 0, err
	}
	if err := sb.Destroy(); err != nil {
		return 0, err
	}
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(res); err != nil {
			return 0, err
		}
	} else if res.Status != runtime.StatusOK && res.Status != runtime.StatusRuntimeError {
		fmt.Fprintf(os.Stderr, "sandboxd exec: %s\n", describe(res))
	}
	if res.Status == runtime.StatusInternalError {
		return exitSandboxFailed, nil
	}
	return res.ExitCode, nil
}

func describe(r *runtime.Result) string {
	if r.Error != "" {
		return string(r.Status) + ": " + r.Error
	}
	return string(r.Status)
}

func limitsFromFlags(c *cli.Context) (runtime.Limits, error) {
	l := runtime.DefaultLimits()
	var err error
	sizes := []struct {
		flag string
		dst  *int64
	}{
		{"memory", &l.MemoryBytes}, {"output-limit", &l.OutputBytes}, {"tmp-size", &l.TmpBytes},
		{"work-size", &l.WorkBytes}, {"file-size", &l.FileSizeBytes},
	}
	for _, s := range sizes {
		if *s.dst, err = units.ParseSize(c.String(s.flag)); err != nil {
			return l, fmt.Errorf("--%s: %w", s.flag, err)
		}
	}
	if l.CPUs, err = strconv.ParseFloat(c.String("cpus"), 64); err != nil || l.CPUs <= 0 {
		return l, fmt.Errorf("--cpus %q: expected a number of cores greater than zero", c.String("cpus"))
	}
	if l.Pids, err = strconv.ParseInt(c.String("pids"), 10, 64); err != nil || l.Pids <= 0 {
		return l, fmt.Errorf("--pids %q: expected a whole number greater than zero", c.String("pids"))
	}
	if l.OpenFiles, err = strconv.ParseUint(c.String("nofile"), 10, 64); err != nil || l.OpenFiles == 0 {
		return l, fmt.Errorf("--nofile %q: expected a whole number greater than zero", c.String("nofile"))
	}
	if l.WallTime, err = units.ParseDuration(c.String("wall-time")); err != nil {
		return l, fmt.Errorf("--wall-time: %w", err)
	}
	l.CPUTime = l.WallTime
	if s := c.String("cpu-time"); s != "" {
		if l.CPUTime, err = units.ParseDuration(s); err != nil {
			return l, fmt.Errorf("--cpu-time: %w", err)
		}
	}
	return l, l.Validate()
}

func parseUser(s string) (int, int, error) {
	uidStr, gidStr, hasGID := strings.Cut(s, ":")
	uid, err := strconv.Atoi(uidStr)
	if err != nil || uid <= 0 {
		return 0, 0, fmt.Errorf("--user %q: expected UID[:GID] with numeric ids other than 0", s)
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.Atoi(gidStr); err != nil || gid <= 0 {
			return 0, 0, fmt.Errorf("--user %q: expected UID[:GID] with numeric ids other than 0", s)
		}
	}
	return uid, gid, nil
}

func parseEnv(kvs []string) ([]string, error) {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "TMPDIR=/tmp"}
	for _, kv := range kvs {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("--env %q: expected K=V", kv)
		}
		env = append(env, kv)
	}
	return env, nil
}
