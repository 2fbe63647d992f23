// Package compat_test runs the Piston and Judge0 compatible endpoints
// (docs/compat.md) on a real daemon: Piston through the unmodified
// piston-client npm package, Judge0 through raw HTTP calls as Judge0's
// docs make them.
package compat_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// compatDaemon is a daemon with the catalog and a compat listener without
// tokens on loopback, at url.
type compatDaemon struct {
	*testdaemon.Daemon
	url string
}

// startCompat starts a daemon whose [compat] section is extra plus an
// anonymous listener, with the language images of the recipes named in
// only (none: every one but the big python-sci, as test/languages).
func startCompat(t *testing.T, extra string, only ...string) *compatDaemon {
	t.Helper()
	port := testdaemon.FreePort(t)
	conf := filepath.Join(t.TempDir(), "sandboxd.toml")
	text := fmt.Sprintf("[compat]\nlisten = \"tcp://127.0.0.1:%d\"\nauth = \"none\"\n%s\n", port, extra)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	catalog, _ := filepath.Abs("../../languages/catalog.toml")
	d := testdaemon.StartWith(t, testdaemon.Config{
		Args:   []string{"--config", conf, "--catalog", catalog, "--concurrency", "2"},
		Images: testdaemon.LanguageImages(t, only...),
	})
	return &compatDaemon{Daemon: d, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// call makes one HTTP request with a JSON body (nil: none) and returns the
// status, the headers and the decoded JSON answer.
func call(t *testing.T, method, url string, body any, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// program is one language's stdin program: it prints "hello, " and the
// first line of its input.
type program struct {
	piston   string // Piston's name for the language
	judge0ID int
	code     string
}

var programs = []program{
	{"python", 71, `print("hello, " + input())`},
	{"c", 50, "#include <stdio.h>\n#include <string.h>\nint main(void){char b[64];if(!fgets(b,sizeof b,stdin))return 1;b[strcspn(b,\"\\n\")]=0;printf(\"hello, %s\\n\",b);return 0;}"},
	{"c++", 54, "#include <iostream>\n#include <string>\nint main(){std::string s;std::getline(std::cin,s);std::cout<<\"hello, \"<<s<<\"\\n\";}"},
	{"java", 62, "import java.util.Scanner;\npublic class Main{public static void main(String[] a){System.out.println(\"hello, \"+new Scanner(System.in).nextLine());}}"},
	{"javascript", 63, `console.log("hello, " + require("fs").readFileSync(0, "utf8").split("\n")[0]);`},
	{"go", 60, "package main\nimport (\"bufio\";\"fmt\";\"os\")\nfunc main(){s:=bufio.NewScanner(os.Stdin);s.Scan();fmt.Println(\"hello, \"+s.Text())}"},
	{"rust", 73, "use std::io::BufRead;\nfn main(){let mut s=String::new();std::io::stdin().lock().read_line(&mut s).unwrap();println!(\"hello, {}\",s.trim_end());}"},
	{"ruby", 72, `puts "hello, " + $stdin.gets.chomp`},
	{"php", 68, "<?php echo \"hello, \" . trim(fgets(STDIN)) . \"\\n\";"},
	{"lua", 64, `print("hello, " .. io.read("l"))`},
	{"bash", 46, `read l; echo "hello, $l"`},
	{"csharp", 51, "using System;\nclass P{static void Main(){Console.WriteLine(\"hello, \"+Console.ReadLine());}}"},
	{"perl", 85, `my $l = <STDIN>; chomp $l; print "hello, $l\n";`},
}

// programImages are the recipes of the programs' languages: the other
// images (the JVM's and GHC's among them) only add import time.
var programImages = []string{"python", "gcc", "java", "node", "go", "rust", "ruby", "php", "lua", "bash", "mono", "scripting"}
