package client

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/BurntSushi/toml"

	"github.com/sandboxd/sandboxd/api"
)

// ParseRecipe reads an image recipe written in TOML with the field names
// of POST /v1/images/build (docs/api.md, "Image builds"):
//
//	name = "py-hello:1"
//	from = "lang/python:3"
//	run = [["python3", "-m", "pip", "install", "requests"]]
//	[env]
//	PIP_BREAK_SYSTEM_PACKAGES = "1"
//	[network]
//	allow = []
//
// An unknown key is an error, as in the API.
func ParseRecipe(data []byte) (*api.BuildRequest, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	// Through JSON: one set of field names and checks, the API's.
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var req api.BuildRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	return &req, nil
}
