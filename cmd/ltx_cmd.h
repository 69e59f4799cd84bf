/*
 * ltx_cmd.h - the `ltxfs ltx` subcommand: inspect and check LTX files.
 *
 *     ltxfs ltx dump FILE     print the header, one line per page, the trailer
 *     ltxfs ltx verify FILE   check every rule of docs/ltx-format.md
 *
 * FILE may be "-" for standard input.
 */
#ifndef LTXFS_CMD_LTX_CMD_H
#define LTXFS_CMD_LTX_CMD_H

/*
 * argv[0] is "ltx".  Returns the process exit status: 0 if the file is
 * valid (dump printed all of it), 1 if it is not or cannot be read (the
 * error is on stderr), 2 for a usage error.
 */
int cmd_ltx(int argc, char **argv);

#endif
