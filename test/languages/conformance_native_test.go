package languages_test

// nativeLangs are the compiled languages of the lang/gcc-extra image
// (images/recipes/gcc-extra).
var nativeLangs = []lang{
	{name: "fortran", main: "main.f90",
		hello: program{"main.f90": "program main\n  print '(a)', 'hello'\nend program main\n"},
		echo: program{"main.f90": `program main
  character(len=4096) :: line
  integer :: ios
  do
    read (*, '(a)', iostat=ios) line
    if (ios /= 0) exit
    print '(a)', trim(line)
  end do
end program main
`},
		args: program{"main.f90": `program main
  integer :: i
  character(len=256) :: arg
  do i = 1, command_argument_count()
    call get_command_argument(i, arg)
    if (i > 1) write (*, '(a)', advance='no') ' '
    write (*, '(a)', advance='no') trim(arg)
  end do
  print '(a)', ''
end program main
`},
		exit3: program{"main.f90": "program main\n  stop 3\nend program main\n"},
		crash: program{"main.f90": "program main\n  error stop 'boom'\nend program main\n"}, crashStderr: "boom",
		compileError: program{"main.f90": "program main\n  x = undeclared(\nend program main\n"},
		// The module's file comes second: the compile command puts it first.
		multi: program{"main.f90": "program main\n  use helper\n  print '(a)', greeting()\nend program main\n",
			"helper.f90": "module helper\ncontains\n  function greeting() result(s)\n    character(len=11) :: s\n    s = 'from helper'\n  end function greeting\nend module helper\n"}},
	{name: "objective-c", main: "main.m",
		hello: program{"main.m": `#import <objc/Object.h>
#include <stdio.h>
@interface Greeter : Object
+ (const char *)greeting;
@end
@implementation Greeter
+ (const char *)greeting { return "hello"; }
@end
int main(void) { puts([Greeter greeting]); return 0; }
`},
		echo:  program{"main.m": "#include <stdio.h>\nint main(void) { int c; while ((c = getchar()) != EOF) putchar(c); return 0; }\n"},
		args:  program{"main.m": "#include <stdio.h>\nint main(int n, char **v) { for (int i = 1; i < n; i++) printf(i > 1 ? \" %s\" : \"%s\", v[i]); puts(\"\"); return 0; }\n"},
		exit3: program{"main.m": "int main(void) { return 3; }\n"},
		crash: program{"main.m": `#import <objc/Object.h>
#include <assert.h>
@interface Check : Object
+ (int)boom;
@end
@implementation Check
+ (int)boom { return 0; }
@end
int main(void) { assert([Check boom]); return 0; }
`}, crashStderr: "Assertion",
		compileError: program{"main.m": "int main(void) { [undeclared run]; return 0; }\n"},
		multi: program{"main.m": "#import \"helper.h\"\n#include <stdio.h>\nint main(void) { puts([Helper text]); return 0; }\n",
			"helper.h": "#import <objc/Object.h>\n@interface Helper : Object\n+ (const char *)text;\n@end\n",
			"helper.m": "#import \"helper.h\"\n@implementation Helper\n+ (const char *)text { return \"from helper\"; }\n@end\n"}},
	{name: "d", main: "main.d",
		hello: program{"main.d": `import std.stdio; void main() { writeln("hello"); }`},
		echo:  program{"main.d": "import std.stdio; void main() { foreach (line; stdin.byLine(KeepTerminator.yes)) write(line); }"},
		args:  program{"main.d": `import std.stdio, std.array; void main(string[] a) { writeln(a[1 .. $].join(" ")); }`},
		exit3: program{"main.d": "int main() { return 3; }"},
		crash: program{"main.d": `void main() { throw new Exception("boom"); }`}, crashStderr: "object.Exception@main.d(1): boom",
		compileError: program{"main.d": "void main() { undeclared(); }"},
		multi:        program{"main.d": "import std.stdio, helper; void main() { writeln(greeting()); }", "helper.d": `module helper; string greeting() { return "from helper"; }`}},
	{name: "ada", main: "main.adb",
		hello: program{"main.adb": "with Ada.Text_IO;\nprocedure Main is\nbegin\n   Ada.Text_IO.Put_Line (\"hello\");\nend Main;\n"},
		echo:  program{"main.adb": "with Ada.Text_IO; use Ada.Text_IO;\nprocedure Main is\nbegin\n   while not End_Of_File loop\n      Put_Line (Get_Line);\n   end loop;\nend Main;\n"},
		args: program{"main.adb": `with Ada.Text_IO; use Ada.Text_IO;
with Ada.Command_Line; use Ada.Command_Line;
procedure Main is
begin
   for I in 1 .. Argument_Count loop
      if I > 1 then
         Put (" ");
      end if;
      Put (Argument (I));
   end loop;
   New_Line;
end Main;
`},
		exit3: program{"main.adb": "with Ada.Command_Line;\nprocedure Main is\nbegin\n   Ada.Command_Line.Set_Exit_Status (3);\nend Main;\n"},
		crash: program{"main.adb": "procedure Main is\nbegin\n   raise Constraint_Error with \"boom\";\nend Main;\n"}, crashStderr: "raised CONSTRAINT_ERROR : boom",
		compileError: program{"main.adb": "procedure Main is\nbegin\n   Undeclared;\nend Main;\n"},
		multi: program{"main.adb": "with Ada.Text_IO; with Helper;\nprocedure Main is\nbegin\n   Ada.Text_IO.Put_Line (Helper.Greeting);\nend Main;\n",
			"helper.ads": "package Helper is\n   function Greeting return String;\nend Helper;\n",
			"helper.adb": "package body Helper is\n   function Greeting return String is\n   begin\n      return \"from helper\";\n   end Greeting;\nend Helper;\n"}},
	{name: "cobol", main: "main.cob",
		hello: program{"main.cob": "IDENTIFICATION DIVISION.\nPROGRAM-ID. hello.\nPROCEDURE DIVISION.\n    DISPLAY \"hello\".\n    STOP RUN.\n"},
		echo: program{"main.cob": `IDENTIFICATION DIVISION.
PROGRAM-ID. echo.
ENVIRONMENT DIVISION.
INPUT-OUTPUT SECTION.
FILE-CONTROL.
    SELECT SYSIN ASSIGN TO KEYBOARD ORGANIZATION LINE SEQUENTIAL.
DATA DIVISION.
FILE SECTION.
FD SYSIN.
01 IN-LINE PIC X(4096).
WORKING-STORAGE SECTION.
01 EOF-FLAG PIC X VALUE "N".
PROCEDURE DIVISION.
    OPEN INPUT SYSIN
    PERFORM UNTIL EOF-FLAG = "Y"
        READ SYSIN
            AT END MOVE "Y" TO EOF-FLAG
            NOT AT END DISPLAY FUNCTION TRIM(IN-LINE TRAILING)
        END-READ
    END-PERFORM
    CLOSE SYSIN
    STOP RUN.
`},
		args: program{"main.cob": `IDENTIFICATION DIVISION.
PROGRAM-ID. args.
DATA DIVISION.
WORKING-STORAGE SECTION.
01 ARGS PIC X(4096).
PROCEDURE DIVISION.
    ACCEPT ARGS FROM COMMAND-LINE
    DISPLAY FUNCTION TRIM(ARGS TRAILING)
    STOP RUN.
`},
		exit3: program{"main.cob": "IDENTIFICATION DIVISION.\nPROGRAM-ID. exit3.\nPROCEDURE DIVISION.\n    STOP RUN RETURNING 3.\n"},
		crash: program{"main.cob": "IDENTIFICATION DIVISION.\nPROGRAM-ID. crash.\nPROCEDURE DIVISION.\n    CALL \"boom\"\n    STOP RUN.\n"}, crashStderr: "module 'boom' not found",
		compileError: program{"main.cob": "IDENTIFICATION DIVISION.\nPROGRAM-ID. broken.\nPROCEDURE DIVISION.\n    MOVE X TO Y.\n"},
		multi: program{"main.cob": `IDENTIFICATION DIVISION.
PROGRAM-ID. multi.
DATA DIVISION.
WORKING-STORAGE SECTION.
01 MSG PIC X(11).
PROCEDURE DIVISION.
    CALL "helper" USING MSG
    DISPLAY MSG
    STOP RUN.
`, "helper.cob": `IDENTIFICATION DIVISION.
PROGRAM-ID. helper.
DATA DIVISION.
LINKAGE SECTION.
01 MSG PIC X(11).
PROCEDURE DIVISION USING MSG.
    MOVE "from helper" TO MSG
    GOBACK.
`}},
	{name: "pascal", main: "main.pas",
		hello: program{"main.pas": "program main;\nbegin\n  writeln('hello');\nend.\n"},
		echo:  program{"main.pas": "program main;\nvar s: string;\nbegin\n  while not eof do begin readln(s); writeln(s); end;\nend.\n"},
		args:  program{"main.pas": "program main;\nvar i: integer;\nbegin\n  for i := 1 to ParamCount do begin\n    if i > 1 then write(' ');\n    write(ParamStr(i));\n  end;\n  writeln;\nend.\n"},
		exit3: program{"main.pas": "program main;\nbegin\n  halt(3);\nend.\n"},
		crash: program{"main.pas": "program main;\nuses SysUtils;\nbegin\n  raise Exception.Create('boom');\nend.\n"}, crashStderr: "Exception: boom",
		compileError: program{"main.pas": "program main;\nbegin\n  undeclared;\nend.\n"},
		multi: program{"main.pas": "program main;\nuses helper;\nbegin\n  writeln(greeting);\nend.\n",
			"helper.pas": "unit helper;\ninterface\nfunction greeting: string;\nimplementation\nfunction greeting: string;\nbegin\n  greeting := 'from helper';\nend;\nend.\n"}},
	{name: "assembly", main: "main.asm",
		hello: program{"main.asm": `section .data
msg: db "hello", 10
section .text
global _start
_start:
    mov rax, 1          ; write(1, msg, 6)
    mov rdi, 1
    mov rsi, msg
    mov rdx, 6
    syscall
    mov rax, 60         ; exit(0)
    xor rdi, rdi
    syscall
`},
		echo: program{"main.asm": `section .bss
buf: resb 4096
section .text
global _start
_start:
    xor rax, rax        ; read(0, buf, 4096)
    xor rdi, rdi
    mov rsi, buf
    mov rdx, 4096
    syscall
    cmp rax, 0
    jle done
    mov rdx, rax        ; write(1, buf, n)
    mov rax, 1
    mov rdi, 1
    mov rsi, buf
    syscall
    jmp _start
done:
    mov rax, 60
    xor rdi, rdi
    syscall
`},
		args: program{"main.asm": `section .data
space: db " "
newline: db 10
section .text
global _start
_start:
    mov r12, [rsp]          ; argc
    lea r13, [rsp + 16]     ; &argv[1]
    mov r14, 1
next_arg:
    cmp r14, r12
    jge finish
    cmp r14, 1
    je print_arg
    mov rax, 1
    mov rdi, 1
    mov rsi, space
    mov rdx, 1
    syscall
print_arg:
    mov rsi, [r13]
    xor rdx, rdx
count:
    cmp byte [rsi + rdx], 0
    je write_arg
    inc rdx
    jmp count
write_arg:
    mov rax, 1
    mov rdi, 1
    syscall
    add r13, 8
    inc r14
    jmp next_arg
finish:
    mov rax, 1
    mov rdi, 1
    mov rsi, newline
    mov rdx, 1
    syscall
    mov rax, 60
    xor rdi, rdi
    syscall
`},
		exit3: program{"main.asm": "section .text\nglobal _start\n_start:\n    mov rax, 60\n    mov rdi, 3\n    syscall\n"},
		// "boom" on stderr, then an illegal instruction (SIGILL).
		crash: program{"main.asm": "section .data\nmsg: db \"boom\", 10\nsection .text\nglobal _start\n_start:\n    mov rax, 1\n    mov rdi, 2\n    mov rsi, msg\n    mov rdx, 5\n    syscall\n    ud2\n"}, crashStderr: "boom",
		compileError: program{"main.asm": "section .text\nglobal _start\n_start:\n    mov rax,\n"},
		multi: program{"main.asm": `%include "helper.asm"
section .text
global _start
_start:
    mov rax, 1
    mov rdi, 1
    mov rsi, helper_msg
    mov rdx, helper_len
    syscall
    mov rax, 60
    xor rdi, rdi
    syscall
`, "helper.asm": "section .data\nhelper_msg: db \"from helper\", 10\nhelper_len: equ $ - helper_msg\n"}},
	{name: "nim", main: "main.nim",
		hello: program{"main.nim": `echo "hello"`}, echo: program{"main.nim": "stdout.write(stdin.readAll())"},
		args:  program{"main.nim": "import os, strutils\necho commandLineParams().join(\" \")"},
		exit3: program{"main.nim": "quit(3)"},
		crash: program{"main.nim": `raise newException(ValueError, "boom")`}, crashStderr: "unhandled exception: boom [ValueError]",
		compileError: program{"main.nim": "undeclared()"},
		multi:        program{"main.nim": "import helper\necho greeting()", "helper.nim": `proc greeting*(): string = "from helper"`}},
}
