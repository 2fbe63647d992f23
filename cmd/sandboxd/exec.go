package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/queue"
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
	return &cli.Command{
		Name:      "exec",
		Usage:     "run one command in a fresh sandbox and exit with its exit code",
		ArgsUsage: "-- CMD [ARGS...]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory of the sandbox (mounted read-only)", Required: true},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one JSON object instead of passing output through"},
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
		}, limitCLIFlags()...),
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
	var stdin []byte
	if p := c.String("stdin"); p != "" {
		if stdin, err = os.ReadFile(p); err != nil {
			return 0, fmt.Errorf("--stdin: %w", err)
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer cancel()
	core, err := execCore(c, uid, gid)
	if err != nil {
		return 0, err
	}
	st := execution.Stage{Image: c.String("rootfs"), Args: args, Env: env, Files: files, Stdin: stdin, Limits: limits}
	jsonOut := c.Bool("json")
	if !jsonOut {
		st.Stdout, st.Stderr = os.Stdout, os.Stderr
	}
	out, err := core.Run(ctx, "", st, nil)
	core.Wait() // the sandbox is gone before exec exits
	if err != nil {
		return 0, err
	}
	res := out.Result
	if jsonOut {
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
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

// execCore is the execution core over a fresh engine, with --rootfs as
// its one image and one slot: exec runs the same stage a daemon does.
func execCore(c *cli.Context, uid, gid int) (*execution.Core, error) {
	cfg := runtime.EngineConfig{RunDir: c.String("run-dir"), CgroupParent: c.String("cgroup-parent"), NoUserNamespace: c.Bool("no-userns")}
	if r := c.String("userns-range"); r != "" {
		var err error
		if cfg.IDs, err = runtime.ParseIDRange(r); err != nil {
			return nil, fmt.Errorf("--userns-range: %w", err)
		}
	}
	engine, err := runtime.NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	engine.ReapDead()
	return execution.New(execution.Options{Images: execution.Dir{}, Slots: queue.New(1, 0),
		Sandboxes: execution.FromBuilder(engine), UID: uid, GID: gid,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}), nil
}

func describe(r *runtime.Result) string {
	if r.Error != "" {
		return string(r.Status) + ": " + r.Error
	}
	return string(r.Status)
}

// limitsFromFlags lays the limit flags given over the defaults.
func limitsFromFlags(c *cli.Context) (runtime.Limits, error) {
	p, err := limits.FromFlags(func(flag string) (string, bool) { return c.String(flag), c.IsSet(flag) })
	if err != nil {
		return runtime.Limits{}, err
	}
	l := p.Settle(limits.Defaults())
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
