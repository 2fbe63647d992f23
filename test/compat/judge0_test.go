package compat_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// judge0Answer is a submission as Judge0 answers it.
type judge0Answer struct {
	Token         string  `json:"token"`
	Stdout        *string `json:"stdout"`
	Stderr        *string `json:"stderr"`
	CompileOutput *string `json:"compile_output"`
	Message       *string `json:"message"`
	Time          *string `json:"time"`
	Memory        *int64  `json:"memory"`
	ExitCode      *int    `json:"exit_code"`
	ExitSignal    *int    `json:"exit_signal"`
	Status        struct {
		ID          int    `json:"id"`
		Description string `json:"description"`
	} `json:"status"`
	Error string `json:"error"`
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// testJudge0Languages runs hello world with stdin in every language of
// Judge0's table, each as Judge0's docs show: POST
// /submissions?base64_encoded=false&wait=true.
func testJudge0Languages(t *testing.T, d *compatDaemon) {
	var langs []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	// Every program's language is listed, with others of the imported
	// images (the scripting image has R, Prolog, SQL... beside Perl).
	code, _ := call(t, "GET", d.url+"/languages", nil, &langs)
	listed := map[int]string{}
	for _, l := range langs {
		listed[l.ID] = l.Name
	}
	for _, p := range programs {
		if listed[p.judge0ID] == "" {
			t.Errorf("GET /languages: %d lacks %d (%s): %+v", code, p.judge0ID, p.piston, langs)
		}
	}
	for _, p := range programs {
		var a judge0Answer
		code, _ := call(t, "POST", d.url+"/submissions?base64_encoded=false&wait=true",
			map[string]any{"source_code": p.code, "language_id": p.judge0ID, "stdin": "world"}, &a)
		if code != http.StatusCreated || str(a.Stdout) != "hello, world\n" || a.Status.ID != 3 || a.Status.Description != "Accepted" ||
			a.Token == "" || a.Time == nil || a.Memory == nil {
			t.Errorf("%s (%d): %d %+v stdout %q stderr %q compile %q", p.piston, p.judge0ID, code, a, str(a.Stdout), str(a.Stderr), str(a.CompileOutput))
		}
	}
}

// testJudge0Statuses checks statuses 3, 4, 5, 6, 7 and 11, with
// expected_output and Judge0's limits (seconds, KB).
func testJudge0Statuses(t *testing.T, d *compatDaemon) {
	cases := []struct {
		name   string
		sub    map[string]any
		status int
		check  func(a judge0Answer) bool
	}{
		{"accepted", map[string]any{"language_id": 71, "source_code": "print(int(input()) * 2)", "stdin": "21", "expected_output": "42\n"}, 3, nil},
		{"wrong answer", map[string]any{"language_id": 71, "source_code": "print(int(input()) * 2)", "stdin": "21", "expected_output": "43"}, 4,
			func(a judge0Answer) bool { return str(a.Stdout) == "42\n" }},
		{"time limit", map[string]any{"language_id": 71, "source_code": "while True: pass", "cpu_time_limit": 0.5, "wall_time_limit": 2}, 5, nil},
		{"compilation error", map[string]any{"language_id": 50, "source_code": "int main(void) { return undeclared; }"}, 6,
			func(a judge0Answer) bool {
				return strings.Contains(str(a.CompileOutput), "undeclared") && a.Stdout == nil
			}},
		{"compiler options", map[string]any{"language_id": 50, "compiler_options": "-DN=42 -Werror",
			"source_code": "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", N); return 0; }"}, 3,
			func(a judge0Answer) bool { return str(a.Stdout) == "42\n" }},
		{"a compiler option refused by the compiler", map[string]any{"language_id": 50, "compiler_options": "-fno-such-option",
			"source_code": "int main(void) { return 0; }"}, 6,
			func(a judge0Answer) bool { return strings.Contains(str(a.CompileOutput), "no-such-option") }},
		{"compiler options of an interpreted language: ignored", map[string]any{"language_id": 71, "compiler_options": "-O", "source_code": "print(1)"}, 3, nil},
		{"SIGSEGV", map[string]any{"language_id": 50, "source_code": "#include <signal.h>\nint main(void) { raise(SIGSEGV); return 0; }"}, 7,
			func(a judge0Answer) bool { return a.ExitSignal != nil && *a.ExitSignal == 11 }},
		{"NZEC", map[string]any{"language_id": 71, "source_code": "import sys\nprint('partial')\nsys.exit(3)", "memory_limit": 65536}, 11,
			func(a judge0Answer) bool {
				return a.ExitCode != nil && *a.ExitCode == 3 && str(a.Stdout) == "partial\n" && str(a.Message) == "Exited with error status 3"
			}},
	}
	for _, c := range cases {
		var a judge0Answer
		code, _ := call(t, "POST", d.url+"/submissions?base64_encoded=false&wait=true&fields=*", c.sub, &a)
		if code != http.StatusCreated || a.Status.ID != c.status || (c.check != nil && !c.check(a)) {
			t.Errorf("%s: %d %+v stdout %q message %q, want status %d", c.name, code, a, str(a.Stdout), str(a.Message), c.status)
		}
	}
	var bad map[string]any
	if code, _ := call(t, "POST", d.url+"/submissions?wait=true", map[string]any{"language_id": 999, "source_code": "x"}, &bad); code != http.StatusUnprocessableEntity ||
		!strings.Contains(fmt.Sprint(bad["error"]), "999") {
		t.Errorf("unknown language id: %d %v, want 422", code, bad)
	}
}

// testJudge0Base64 sends the source and stdin in base64 and reads the
// output in base64, and reads output that is not UTF-8 only that way.
func testJudge0Base64(t *testing.T, d *compatDaemon) {
	enc := base64.StdEncoding.EncodeToString
	var a judge0Answer
	code, _ := call(t, "POST", d.url+"/submissions/?base64_encoded=true&wait=true",
		map[string]any{"language_id": 46, "source_code": enc([]byte("read l; echo \"héllo, $l\"; printf '\\377'")), "stdin": enc([]byte("wörld"))}, &a)
	out, err := base64.StdEncoding.DecodeString(str(a.Stdout))
	if code != http.StatusCreated || err != nil || string(out) != "héllo, wörld\n\xff" || a.Status.ID != 3 {
		t.Fatalf("base64: %d %+v stdout %q (%q, %v)", code, a, str(a.Stdout), out, err)
	}
	var plain judge0Answer
	code, _ = call(t, "GET", d.url+"/submissions/"+a.Token+"?base64_encoded=false", nil, &plain)
	if code != http.StatusUnprocessableEntity || !strings.Contains(plain.Error, "base64_encoded=true") {
		t.Errorf("output that is not UTF-8 without base64: %d %+v", code, plain)
	}
	code, _ = call(t, "POST", d.url+"/submissions?base64_encoded=true&wait=true", map[string]any{"language_id": 46, "source_code": "not base64!"}, &plain)
	if code != http.StatusUnprocessableEntity {
		t.Errorf("source that is not base64: %d %+v", code, plain)
	}
}

// poll gets a submission until it has ended.
func poll(t *testing.T, url string) judge0Answer {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var a judge0Answer
		if code, _ := call(t, "GET", url, nil, &a); code != http.StatusOK {
			t.Fatalf("GET %s: %d %+v", url, code, a)
		}
		if a.Status.ID > 2 || time.Now().After(deadline) {
			return a
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testJudge0Tokens makes submissions without wait, alone and in a batch,
// and reads their results by token.
func testJudge0Tokens(t *testing.T, d *compatDaemon) {
	var created judge0Answer
	code, _ := call(t, "POST", d.url+"/submissions?base64_encoded=false&wait=false",
		map[string]any{"language_id": 64, "source_code": `io.write("hello, ", io.read("l"), "\n")`, "stdin": "token"}, &created)
	if code != http.StatusCreated || created.Token == "" || created.Stdout != nil {
		t.Fatalf("POST without wait: %d %+v, want only a token", code, created)
	}
	if a := poll(t, d.url+"/submissions/"+created.Token+"?base64_encoded=false&fields=stdout,status"); str(a.Stdout) != "hello, token\n" || a.Status.ID != 3 {
		t.Errorf("GET by token: %+v stdout %q", a, str(a.Stdout))
	}
	var missing judge0Answer
	if code, _ := call(t, "GET", d.url+"/submissions/00000000-0000-4000-8000-000000000000", nil, &missing); code != http.StatusNotFound {
		t.Errorf("unknown token: %d %+v", code, missing)
	}

	var tokens []map[string]string
	subs := []map[string]any{
		{"language_id": 71, "source_code": "print('one')"},
		{"language_id": 72, "source_code": "puts 'two'"},
		{"language_id": 999, "source_code": "x"},
	}
	code, _ = call(t, "POST", d.url+"/submissions/batch?base64_encoded=false", map[string]any{"submissions": subs}, &tokens)
	if code != http.StatusCreated || len(tokens) != 3 || tokens[0]["token"] == "" || tokens[1]["token"] == "" || tokens[2]["error"] == "" {
		t.Fatalf("POST /submissions/batch: %d %v", code, tokens)
	}
	for i, want := range []string{"one\n", "two\n"} {
		if a := poll(t, d.url+"/submissions/"+tokens[i]["token"]); str(a.Stdout) != want || a.Status.ID != 3 {
			t.Errorf("batch submission %d: %+v stdout %q", i, a, str(a.Stdout))
		}
	}
	var batch struct {
		Submissions []judge0Answer `json:"submissions"`
	}
	code, _ = call(t, "GET", d.url+"/submissions/batch?tokens="+tokens[0]["token"]+","+tokens[1]["token"]+"&base64_encoded=false&fields=stdout,status", nil, &batch)
	if code != http.StatusOK || len(batch.Submissions) != 2 || str(batch.Submissions[1].Stdout) != "two\n" {
		t.Errorf("GET /submissions/batch: %d %+v", code, batch)
	}
}
