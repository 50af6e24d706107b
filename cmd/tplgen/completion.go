package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionCommand prints a shell script that completes tplgen's commands and flags by asking
// the binary itself (urfave/cli's --generate-bash-completion), so it never goes stale.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a bash or zsh completion script",
		ArgsUsage: "bash|zsh",
		Description: `Load it in the current shell, or add the line to ~/.bashrc or ~/.zshrc:

   source <(tplgen completion bash)
   source <(tplgen completion zsh)

Commands, subcommands and flags are completed; file names everywhere else.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: want one argument, bash or zsh")
			}
			var script string
			switch c.Args().First() {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			default:
				return usagef("completion: unknown shell %q (want bash or zsh)", c.Args().First())
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// The scripts run the words typed so far (without the one being completed, unless it starts
// with "-", which asks for flags) followed by --generate-bash-completion.
const bashCompletion = `# bash completion for tplgen
_tplgen_complete() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local -a words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
    if [[ $cur == -* ]]; then
        words+=("$cur")
    fi
    local IFS=$'\n'
    local candidates
    candidates=$("${COMP_WORDS[0]}" "${words[@]}" --generate-bash-completion 2>/dev/null)
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
}
complete -o default -o bashdefault -F _tplgen_complete tplgen
`

const zshCompletion = `#compdef tplgen
# zsh completion for tplgen
_tplgen() {
    local cur=${words[CURRENT]}
    local -a typed candidates
    typed=("${(@)words[2,CURRENT-1]}")
    if [[ $cur == -* ]]; then
        typed+=("$cur")
    fi
    candidates=("${(@f)$(${words[1]} "${(@)typed}" --generate-bash-completion 2>/dev/null)}")
    # compadd keeps the candidates matching the word; none (a positional argument): files.
    if ! { (( ${#candidates} )) && [[ -n ${candidates[1]} ]] && compadd -- "${(@)candidates}" }; then
        _files
    fi
}
if [[ $funcstack[1] == _tplgen ]]; then
    _tplgen "$@"
elif (( $+functions[compdef] )); then
    compdef _tplgen tplgen
fi
`
