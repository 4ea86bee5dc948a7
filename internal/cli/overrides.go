package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ParseOverrides parses args with fs, whose flags write into a config
// already read from the environment, then checks the result again with
// validate. flagOf maps a setting's variable to the flag that overrides
// it, so that a bad value that came from a flag is reported naming the
// flag. For -h it prints fs's usage on usage and returns flag.ErrHelp;
// other command-line errors wrap ErrUsage.
func ParseOverrides(fs *flag.FlagSet, args []string, usage io.Writer, flagOf map[string]string, validate func() error) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fs.Usage()
			return err
		}
		return fmt.Errorf("%w: %w (see --help)", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see --help)", ErrUsage, fs.Arg(0))
	}
	if err := validate(); err != nil {
		var se *SettingError
		if errors.As(err, &se) && flagSet(fs, flagOf[se.Var]) {
			return fmt.Errorf("%w: -%s %s", ErrUsage, flagOf[se.Var], se.Msg)
		}
		return err
	}
	return nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// ParseCommand parses args with fs, the flags of a command that takes no
// arguments, named for it (such as "ordoctl status"). For -h it prints
// fs's usage on usage and returns help true; a bad flag or an argument is
// an error wrapping ErrUsage that points to the command's --help.
func ParseCommand(fs *flag.FlagSet, args []string, usage io.Writer) (help bool, err error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fs.Usage()
			return true, nil
		}
		return false, fmt.Errorf("%w: %w (see %s --help)", ErrUsage, err, fs.Name())
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%w: unexpected argument %q (see %s --help)", ErrUsage, fs.Arg(0), fs.Name())
	}
	return false, nil
}
