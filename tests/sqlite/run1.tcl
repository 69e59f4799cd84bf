# run1.tcl - run one SQLite test file the way `testfixture FILE ARGS...`
# would, but safe to use with tester.tcl options such as --testdir=.
#
# Usage: testfixture tests/sqlite/run1.tcl /abs/path/test/NAME.test --testdir=.
#
# tester.tcl parses its options with `foreach a $argv` at global scope, so
# any option leaves a global scalar `a` behind, and test files that later
# use a global array `a` (wal2.test: "can't set a(0): variable isn't array")
# die.  Here tester.tcl is sourced first (it parses the options, creates and
# enters the test directory and sets up the counters), the leftovers are
# removed, then the test file runs; its own `source tester.tcl` returns
# early because tester.tcl has already run once.

set argv0 [file normalize [lindex $argv 0]]
set argv [lrange $argv 1 end]
set testdir [file dirname $argv0]
source [file join $testdir tester.tcl]
unset -nocomplain a dummy
source $argv0
