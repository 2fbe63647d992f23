package api

import "time"

// CodeUnknownTestset is the 404 of a test set that does not exist, was
// deleted, or is another caller's.
const CodeUnknownTestset = "unknown_testset"

// Testset is the summary of a stored test set (POST, GET /v1/testsets):
// what its archive held and what its testset.toml said.
type Testset struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// TestCount and Bytes: its tests, and the bytes of all its files.
	TestCount int   `json:"test_count"`
	Bytes     int64 `json:"bytes"`
	// Tests are in the order they run; the list (GET /v1/testsets)
	// leaves them out.
	Tests   []TestsetTest `json:"tests,omitempty"`
	Groups  []Group       `json:"groups,omitempty"`
	Compare *Compare      `json:"compare,omitempty"`
	// Checker and Interactor name their language and files (in the
	// archive); their limits are as in a request.
	Checker          *TestsetProgram `json:"checker,omitempty"`
	CheckerLimits    *Limits         `json:"checker_limits,omitempty"`
	Interactor       *TestsetProgram `json:"interactor,omitempty"`
	InteractorLimits *Limits         `json:"interactor_limits,omitempty"`
}

// TestsetTest is one test of a set: NAME of NAME.in, the sizes of its
// input and answer, and what testset.toml gave it.
type TestsetTest struct {
	Name        string   `json:"name"`
	InputBytes  int64    `json:"input_bytes"`
	AnswerBytes int64    `json:"answer_bytes"`
	Group       string   `json:"group,omitempty"`
	Points      *float64 `json:"points,omitempty"`
	Compare     *Compare `json:"compare,omitempty"`
}

// TestsetProgram is a checker or interactor of a set: its language and
// the names of its files in the archive, the first the main file.
type TestsetProgram struct {
	Language string   `json:"language"`
	Version  string   `json:"version,omitempty"`
	Files    []string `json:"files"`
}

// TestsetList is GET /v1/testsets: the caller's sets, oldest first.
type TestsetList struct {
	Testsets []Testset `json:"testsets"`
}
