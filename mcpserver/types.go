package mcpserver

import "time"

// The tools' inputs and outputs. The SDK derives each tool's input and
// output JSON Schema from these types; the jsonschema tags are the
// descriptions a model reads, so they say what to put, not how it is
// implemented. A field without omitempty is required.

// FileInput is a file placed in /work before the program runs.
type FileInput struct {
	Name     string `json:"name" jsonschema:"path relative to /work, e.g. data.csv or lib/util.py"`
	Content  string `json:"content" jsonschema:"the file's content, UTF-8 text unless encoding is base64"`
	Encoding string `json:"encoding,omitempty" jsonschema:"utf8 (the default) or base64 for binary content"`
}

// Limits narrow a run's resources; what is left out takes the daemon's
// defaults (the language's, for run_code).
type Limits struct {
	WallTimeMS  *int64 `json:"wall_time_ms,omitempty" jsonschema:"wall-clock time limit in milliseconds"`
	CPUTimeMS   *int64 `json:"cpu_time_ms,omitempty" jsonschema:"CPU time limit in milliseconds"`
	MemoryBytes *int64 `json:"memory_bytes,omitempty" jsonschema:"memory limit in bytes"`
	OutputBytes *int64 `json:"output_bytes,omitempty" jsonschema:"bytes of stdout and of stderr kept; more ends the run with status output_limit"`
}

// RunCodeInput is run_code's input.
type RunCodeInput struct {
	Language string      `json:"language" jsonschema:"the language, a name or alias from list_languages: python, javascript, c, cpp, go, java, rust, ruby, php, lua, bash..."`
	Code     string      `json:"code" jsonschema:"the program's source code: the main file"`
	Version  string      `json:"version,omitempty" jsonschema:"a version prefix such as 3 or 3.11; default: the one installed"`
	Filename string      `json:"filename,omitempty" jsonschema:"the main file's name; default: the language's conventional one (main.py, Main.java)"`
	Stdin    string      `json:"stdin,omitempty" jsonschema:"standard input of the program"`
	Args     []string    `json:"args,omitempty" jsonschema:"command-line arguments of the program"`
	Files    []FileInput `json:"files,omitempty" jsonschema:"more files put in /work beside the main file: modules, headers, data"`
	Collect  []string    `json:"collect,omitempty" jsonschema:"files to read back from /work after the run: paths or globs such as out/*.txt. PNG, JPEG and SVG files come back as images. Default: *.png, *.jpg, *.jpeg and *.svg at the top of /work"`
	Limits   *Limits     `json:"limits,omitempty" jsonschema:"resource limits of the run"`
}

// RunResult is one program run: the run of run_code, a compile, an exec.
type RunResult struct {
	Status          string       `json:"status" jsonschema:"ok (exit 0), runtime_error (non-zero exit or signal), time_limit, wall_time_limit, memory_limit, output_limit, or internal_error"`
	ExitCode        int          `json:"exit_code" jsonschema:"the exit code, 128+N when signal N ended the program"`
	Signal          string       `json:"signal,omitempty" jsonschema:"the signal that ended the program, e.g. SIGKILL"`
	Stdout          string       `json:"stdout" jsonschema:"standard output"`
	Stderr          string       `json:"stderr" jsonschema:"standard error"`
	StdoutEncoding  string       `json:"stdout_encoding,omitempty" jsonschema:"base64 when stdout is not UTF-8 text"`
	StderrEncoding  string       `json:"stderr_encoding,omitempty" jsonschema:"base64 when stderr is not UTF-8 text"`
	StdoutTruncated bool         `json:"stdout_truncated,omitempty" jsonschema:"stdout was cut at the output limit"`
	StderrTruncated bool         `json:"stderr_truncated,omitempty" jsonschema:"stderr was cut at the output limit"`
	WallTimeMS      float64      `json:"wall_time_ms" jsonschema:"wall-clock time in milliseconds"`
	CPUTimeMS       float64      `json:"cpu_time_ms" jsonschema:"CPU time in milliseconds"`
	MemoryPeakBytes int64        `json:"memory_peak_bytes" jsonschema:"peak memory in bytes"`
	Error           string       `json:"error,omitempty" jsonschema:"why the sandbox failed, with status internal_error"`
	Files           []FileResult `json:"files,omitempty" jsonschema:"the collected files; images are also given as image content"`
}

// FileResult is a collected file.
type FileResult struct {
	Name      string `json:"name" jsonschema:"path under /work"`
	Size      int64  `json:"size" jsonschema:"the file's size in bytes"`
	MIMEType  string `json:"mime_type,omitempty" jsonschema:"image/png, image/jpeg or image/svg+xml for an image, given as image content rather than here"`
	Content   string `json:"content,omitempty" jsonschema:"the content of a file that is not an image"`
	Encoding  string `json:"encoding,omitempty" jsonschema:"base64 when content is not UTF-8 text"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"only part of the file was read (the collect budget ran out)"`
	Type      string `json:"type,omitempty" jsonschema:"symlink, other or dir for a path that is not a regular file, which is never read; missing when nothing matched an explicit collect entry"`
}

// RunCodeOutput is run_code's output.
type RunCodeOutput struct {
	Language string     `json:"language" jsonschema:"the language's name"`
	Version  string     `json:"version" jsonschema:"the language's version"`
	Status   string     `json:"status" jsonschema:"the outcome: the run's status, or compile_error when the program did not compile"`
	Compile  *RunResult `json:"compile,omitempty" jsonschema:"the compile, for a compiled language whose compile failed"`
	Run      *RunResult `json:"run,omitempty" jsonschema:"the program's run; absent when the compile failed"`
}

// Language is one language of list_languages.
type Language struct {
	Name      string   `json:"name" jsonschema:"the name to give run_code and create_sandbox"`
	Aliases   []string `json:"aliases" jsonschema:"other names accepted for it"`
	Version   string   `json:"version" jsonschema:"the installed version"`
	Compiled  bool     `json:"compiled" jsonschema:"compiled before it runs"`
	Main      string   `json:"main" jsonschema:"the main file's conventional name"`
	Available bool     `json:"available" jsonschema:"false when its image is missing: it cannot run"`
}

// ListLanguagesOutput is list_languages's output.
type ListLanguagesOutput struct {
	Languages []Language `json:"languages" jsonschema:"the languages"`
}

// NoInput is the input of a tool without arguments.
type NoInput struct{}

// CreateSandboxInput is create_sandbox's input.
type CreateSandboxInput struct {
	Language      string            `json:"language,omitempty" jsonschema:"a language from list_languages whose image the sandbox runs; give this or image"`
	Image         string            `json:"image,omitempty" jsonschema:"an image name known to the daemon; give this or language"`
	Version       string            `json:"version,omitempty" jsonschema:"a version prefix of the language"`
	Files         []FileInput       `json:"files,omitempty" jsonschema:"files put in /work at the start"`
	Env           map[string]string `json:"env,omitempty" jsonschema:"environment variables of every exec"`
	TTLMS         *int64            `json:"ttl_ms,omitempty" jsonschema:"the sandbox's life in milliseconds; default: the daemon's"`
	IdleTimeoutMS *int64            `json:"idle_timeout_ms,omitempty" jsonschema:"ended after this long without a call, in milliseconds; default: the daemon's"`
}

// SandboxOutput is create_sandbox's output.
type SandboxOutput struct {
	SandboxID     string    `json:"sandbox_id" jsonschema:"the id to give exec, write_file, read_file, list_files and delete_sandbox"`
	Image         string    `json:"image" jsonschema:"the image the sandbox runs"`
	Language      string    `json:"language,omitempty" jsonschema:"its language, when created by language"`
	Version       string    `json:"version,omitempty" jsonschema:"the language's version"`
	ExpiresAt     time.Time `json:"expires_at" jsonschema:"when the sandbox ends at the latest"`
	IdleTimeoutMS int64     `json:"idle_timeout_ms" jsonschema:"it ends after this long without a call"`
}

// ExecInput is exec's input.
type ExecInput struct {
	SandboxID string            `json:"sandbox_id" jsonschema:"the sandbox, from create_sandbox"`
	Command   string            `json:"command,omitempty" jsonschema:"a shell command line, run with /bin/sh -c; give this or cmd"`
	Cmd       []string          `json:"cmd,omitempty" jsonschema:"the program and its arguments, run without a shell; give this or command"`
	Stdin     string            `json:"stdin,omitempty" jsonschema:"standard input"`
	Cwd       string            `json:"cwd,omitempty" jsonschema:"working directory, /work by default"`
	Env       map[string]string `json:"env,omitempty" jsonschema:"more environment variables"`
	Limits    *Limits           `json:"limits,omitempty" jsonschema:"limits of this exec: only wall_time_ms, cpu_time_ms and output_bytes"`
}

// WriteFileInput is write_file's input.
type WriteFileInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox, from create_sandbox"`
	Path      string `json:"path" jsonschema:"relative to /work, or absolute under /work or /tmp; missing directories are made"`
	Content   string `json:"content" jsonschema:"the content, UTF-8 text unless encoding is base64"`
	Encoding  string `json:"encoding,omitempty" jsonschema:"utf8 (the default) or base64"`
	Mode      string `json:"mode,omitempty" jsonschema:"octal permission bits such as 0755; default 0644"`
}

// FileEntry describes a file of a sandbox.
type FileEntry struct {
	Path    string    `json:"path" jsonschema:"absolute path in the sandbox"`
	Type    string    `json:"type" jsonschema:"file, dir, symlink or other"`
	Size    int64     `json:"size" jsonschema:"size in bytes"`
	Mode    string    `json:"mode" jsonschema:"octal permission bits"`
	ModTime time.Time `json:"mtime" jsonschema:"last modification"`
}

// ReadFileInput is read_file's input.
type ReadFileInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox, from create_sandbox"`
	Path      string `json:"path" jsonschema:"relative to /work, or absolute under /work or /tmp"`
	MaxBytes  int64  `json:"max_bytes,omitempty" jsonschema:"read at most this many bytes; default and maximum 1048576"`
}

// ReadFileOutput is read_file's output.
type ReadFileOutput struct {
	Path      string `json:"path" jsonschema:"the path read"`
	Size      int64  `json:"size" jsonschema:"bytes returned"`
	MIMEType  string `json:"mime_type,omitempty" jsonschema:"set for a PNG, JPEG or SVG image, which is given as image content rather than here"`
	Content   string `json:"content,omitempty" jsonschema:"the content of a file that is not an image"`
	Encoding  string `json:"encoding,omitempty" jsonschema:"base64 when content is not UTF-8 text"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"the file is longer than max_bytes"`
}

// ListFilesInput is list_files's input.
type ListFilesInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox, from create_sandbox"`
	Path      string `json:"path,omitempty" jsonschema:"the directory, relative to /work or absolute under /work or /tmp; default /work"`
	Recursive bool   `json:"recursive,omitempty" jsonschema:"list the whole tree, not only the directory's own entries"`
}

// ListFilesOutput is list_files's output.
type ListFilesOutput struct {
	Path    string      `json:"path" jsonschema:"the directory listed"`
	Entries []FileEntry `json:"entries" jsonschema:"its entries"`
}

// SandboxIDInput names a sandbox.
type SandboxIDInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox, from create_sandbox"`
}

// DeleteSandboxOutput is delete_sandbox's output.
type DeleteSandboxOutput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox ended"`
	Deleted   bool   `json:"deleted" jsonschema:"true: the sandbox and all its files are gone"`
}
