package languages_test

// jvmLangs are the JVM languages of the lang/java image besides Java.
var jvmLangs = []lang{
	{name: "kotlin", main: "main.kt",
		hello: program{"main.kt": `fun main() { println("hello") }`},
		echo:  program{"main.kt": "fun main() { System.`in`.copyTo(System.out); System.out.flush() }"},
		args:  program{"main.kt": `fun main(args: Array<String>) = println(args.joinToString(" "))`},
		exit3: program{"main.kt": "fun main() { kotlin.system.exitProcess(3) }"},
		crash: program{"main.kt": `fun main() { throw RuntimeException("boom") }`}, crashStderr: "java.lang.RuntimeException: boom",
		compileError: program{"main.kt": "fun main() { undeclared() }"},
		multi:        program{"main.kt": "fun main() { println(helper()) }", "helper.kt": `fun helper() = "from helper"`}},
	{name: "scala", main: "main.scala",
		hello: program{"main.scala": `object Main { def main(args: Array[String]): Unit = println("hello") }`},
		echo:  program{"main.scala": "object Main { def main(args: Array[String]): Unit = print(scala.io.Source.stdin.mkString) }"},
		args:  program{"main.scala": `object Main { def main(args: Array[String]): Unit = println(args.mkString(" ")) }`},
		exit3: program{"main.scala": "object Main { def main(args: Array[String]): Unit = sys.exit(3) }"},
		crash: program{"main.scala": `object Main { def main(args: Array[String]): Unit = throw new RuntimeException("boom") }`}, crashStderr: "java.lang.RuntimeException: boom",
		compileError: program{"main.scala": "object Main { def main(args: Array[String]): Unit = undeclared() }"},
		multi: program{"main.scala": "object Main { def main(args: Array[String]): Unit = println(Helper.f()) }",
			"helper.scala": `object Helper { def f(): String = "from helper" }`}},
	{name: "groovy", main: "main.groovy",
		hello: program{"main.groovy": `println "hello"`}, echo: program{"main.groovy": "System.out << System.in"},
		args: program{"main.groovy": `println args.join(" ")`}, exit3: program{"main.groovy": "System.exit(3)"},
		crash: program{"main.groovy": `throw new RuntimeException("boom")`}, crashStderr: "java.lang.RuntimeException: boom",
		multi: program{"main.groovy": "println new Helper().f()", "Helper.groovy": `class Helper { String f() { "from helper" } }`}},
	{name: "clojure", main: "main.clj",
		hello: program{"main.clj": `(println "hello")`}, echo: program{"main.clj": "(print (slurp *in*)) (flush)"},
		args: program{"main.clj": `(println (clojure.string/join " " *command-line-args*))`}, exit3: program{"main.clj": "(System/exit 3)"},
		crash: program{"main.clj": `(throw (Exception. "boom"))`}, crashStderr: "boom",
		multi: program{"main.clj": "(require 'helper)\n(println (helper/greeting))", "helper.clj": "(ns helper)\n(defn greeting [] \"from helper\")"}},
}

// beamLangs are Erlang and Elixir, of the lang/beam image.
var beamLangs = []lang{
	{name: "erlang", main: "main.erl",
		hello: program{"main.erl": "-module(main).\n-export([main/1]).\nmain(_) -> io:format(\"hello~n\").\n"},
		echo: program{"main.erl": "-module(main).\n-export([main/1]).\nmain(_) -> echo().\n" +
			"echo() -> case io:get_line(\"\") of eof -> ok; Line -> io:put_chars(Line), echo() end.\n"},
		args:  program{"main.erl": "-module(main).\n-export([main/1]).\nmain(Args) -> io:format(\"~s~n\", [lists:join(\" \", Args)]).\n"},
		exit3: program{"main.erl": "-module(main).\n-export([main/1]).\nmain(_) -> halt(3).\n"},
		crash: program{"main.erl": "-module(main).\n-export([main/1]).\nmain(_) -> error(boom).\n"}, crashStderr: "exception error: boom",
		compileError: program{"main.erl": "-module(main).\n-export([main/1]).\nmain(_) -> undeclared().\n"},
		multi: program{"main.erl": "-module(main).\n-export([main/1]).\nmain(_) -> io:format(\"~s~n\", [helper:greeting()]).\n",
			"helper.erl": "-module(helper).\n-export([greeting/0]).\ngreeting() -> \"from helper\".\n"}},
	{name: "elixir", main: "main.exs",
		hello: program{"main.exs": `IO.puts("hello")`}, echo: program{"main.exs": ":stdio |> IO.read(:eof) |> IO.write()"},
		args: program{"main.exs": `System.argv() |> Enum.join(" ") |> IO.puts()`}, exit3: program{"main.exs": "System.halt(3)"},
		crash: program{"main.exs": `raise "boom"`}, crashStderr: "** (RuntimeError) boom",
		multi: program{"main.exs": "Code.require_file(\"helper.exs\", __DIR__)\nIO.puts(Helper.greeting())",
			"helper.exs": "defmodule Helper do\n  def greeting, do: \"from helper\"\nend\n"}},
}

// mlLangs are OCaml and Haskell, each in its own image.
var mlLangs = []lang{
	{name: "ocaml", main: "main.ml",
		hello: program{"main.ml": `let () = print_endline "hello"`},
		echo:  program{"main.ml": "let () = try while true do print_endline (input_line stdin) done with End_of_file -> ()"},
		args:  program{"main.ml": `let () = Sys.argv |> Array.to_list |> List.tl |> String.concat " " |> print_endline`},
		exit3: program{"main.ml": "let () = exit 3"},
		crash: program{"main.ml": `let () = failwith "boom"`}, crashStderr: `Fatal error: exception Failure("boom")`,
		compileError: program{"main.ml": "let () = print_endline 3"},
		multi:        program{"main.ml": "let () = print_endline (Helper.f ())", "helper.ml": `let f () = "from helper"`}},
	{name: "haskell", main: "main.hs",
		hello: program{"main.hs": `main = putStrLn "hello"`},
		echo:  program{"main.hs": "main = interact id"},
		args:  program{"main.hs": "import System.Environment\nmain = getArgs >>= putStrLn . unwords"},
		exit3: program{"main.hs": "import System.Exit\nmain = exitWith (ExitFailure 3)"},
		crash: program{"main.hs": `main = error "boom"`}, crashStderr: "main: boom",
		compileError: program{"main.hs": "main = putStrLn 1"},
		multi:        program{"main.hs": "import Helper\nmain = putStrLn helper", "Helper.hs": "module Helper where\nhelper = \"from helper\""}},
}

// nodeLangs compile to JavaScript, in the lang/node image.
var nodeLangs = []lang{
	{name: "typescript", main: "main.ts",
		hello: program{"main.ts": `const greeting: string = "hello";` + "\nconsole.log(greeting);"},
		echo:  program{"main.ts": "process.stdin.pipe(process.stdout);"},
		args:  program{"main.ts": `console.log(process.argv.slice(2).join(" "));`}, exit3: program{"main.ts": "process.exit(3);"},
		crash: program{"main.ts": `throw new Error("boom");`}, crashStderr: "Error: boom",
		compileError: program{"main.ts": `const x: number = "text";`},
		multi:        program{"main.ts": "import { greeting } from \"./helper\";\nconsole.log(greeting());", "helper.ts": `export function greeting(): string { return "from helper"; }`}},
	{name: "coffeescript", main: "main.coffee",
		hello: program{"main.coffee": `console.log "hello"`}, echo: program{"main.coffee": "process.stdin.pipe process.stdout"},
		args: program{"main.coffee": `console.log process.argv[2..].join " "`}, exit3: program{"main.coffee": "process.exit 3"},
		crash: program{"main.coffee": `throw new Error "boom"`}, crashStderr: "Error: boom",
		multi: program{"main.coffee": "helper = require './helper'\nconsole.log helper.greeting()", "helper.coffee": `exports.greeting = -> "from helper"`}},
}
