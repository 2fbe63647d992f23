package languages_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestStreamingInLanguageMode: a streamed language request tells each
// stage as it starts (compile, then each test) and sends each stage's
// output between them, then the result the plain answer would hold.
func TestStreamingInLanguageMode(t *testing.T) {
	d := startWithImages(t, "gcc")
	src := "#include <stdio.h>\n#include <unistd.h>\nint main(void){int x;if(scanf(\"%d\",&x)!=1)return 1;printf(\"got \");fflush(stdout);usleep(300000);printf(\"%d\\n\",x);return 0;}"
	body, _ := json.Marshal(api.ExecuteRequest{Language: "c", Stream: true, Files: []api.File{{Name: "main.c", Content: src}},
		Tests: []api.Test{{Stdin: "1", ExpectedStdout: "got 1\n"}, {Stdin: "2", ExpectedStdout: "got 3\n"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://sandboxd/v1/execute", bytes.NewReader(body))
	resp, err := testdaemon.HTTPClient(d.Socket).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var seen []string
	var result api.LanguageResponse
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev struct {
			Type, Stage, Data string
			Index             int
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch ev.Type {
		case "stage":
			seen = append(seen, fmt.Sprintf("%s %d", ev.Stage, ev.Index))
		case "stdout":
			seen = append(seen, "stdout "+ev.Data)
		case "result":
			if err := json.Unmarshal(sc.Bytes(), &result); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, "result")
		}
	}
	want := []string{"compile 0", "test 0", "stdout got ", "stdout 1\n", "test 1", "stdout got ", "stdout 2\n", "result"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", seen, want)
	}
	if result.Status != "wrong_answer" || len(result.Tests) != 2 || result.Tests[0].Status != "accepted" || result.Summary["wrong_answer"] != 1 {
		t.Errorf("result %+v", result)
	}
}
