package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sandboxd/sandboxd/api"
)

// BuildEvent is one line of an image build's stream: "step" (Step, Cmd),
// "stdout" and "stderr" (Data, Encoding), "step_end" (Step, Result),
// "result" (the image: Raw holds its fields) or "error" (Error).
type BuildEvent struct {
	Event
	Step   int         `json:"step,omitempty"`
	Cmd    []string    `json:"cmd,omitempty"`
	Result *api.Result `json:"result,omitempty"`
}

// BuildImage runs a recipe (POST /v1/images/build) and returns the new
// image; each event of the build, the last one included, goes to
// onEvent when it is set. A failed step is an *Error with the API's code
// and message.
func (c *Client) BuildImage(ctx context.Context, req *api.BuildRequest, onEvent func(*BuildEvent)) (*api.Image, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	rc, err := c.stream(ctx, http.MethodPost, "/v1/images/build", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		ev := &BuildEvent{}
		if err := json.Unmarshal(sc.Bytes(), ev); err != nil {
			return nil, fmt.Errorf("sandboxd sent a build event that is not JSON: %w", err)
		}
		ev.Raw = bytes.Clone(sc.Bytes())
		if onEvent != nil {
			onEvent(ev)
		}
		switch ev.Type {
		case "error":
			if ev.Error == nil {
				return nil, fmt.Errorf("sandboxd sent an error event without an error")
			}
			return nil, &Error{HTTPStatus: http.StatusOK, Code: ev.Error.Code, Message: ev.Error.Message}
		case "result":
			var img api.Image
			if err := json.Unmarshal(ev.Raw, &img); err != nil {
				return nil, fmt.Errorf("decoding the built image: %w", err)
			}
			return &img, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the build stream: %w", err)
	}
	return nil, fmt.Errorf("the build stream ended without a result")
}
