/* geusemaker completion bash|zsh|fish, and the man page (manpage, hidden):
 * both generated from the command and option tables, so they list exactly
 * what the parser accepts. The build runs them to install the files. */
#include <stdio.h>
#include <string.h>

#include "cli/config.h"

static int cmd_completion(gm_cli *cli, const gm_args *args);
static int cmd_manpage(gm_cli *cli, const gm_args *args);

const gm_command gm_command_completion = {
    .name = "completion",
    .summary = "print the shell completion script: bash, zsh or fish",
    .synopsis = "completion bash|zsh|fish",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one shell: bash, zsh or fish",
    .notes = "bash: source <(geusemaker completion bash), or install it as\n"
             "/usr/share/bash-completion/completions/geusemaker (cmake --install does).\n"
             "zsh: geusemaker completion zsh > \"${fpath[1]}/_geusemaker\".\n"
             "fish: geusemaker completion fish > ~/.config/fish/completions/geusemaker.fish.",
    .local = true,
    .no_settings = true,
    .run = cmd_completion,
};

const gm_command gm_command_manpage = {
    .name = "manpage",
    .summary = "print the manual page geusemaker(1) (roff)",
    .synopsis = "manpage",
    .pos_what = "no arguments",
    .local = true,
    .hidden = true,
    .no_settings = true,
    .run = cmd_manpage,
};

/* The fixed values an option takes, for completion ("dev automation gpu"), or
 * NULL. */
static const char *option_values(const gm_opt *o)
{
    static const struct {
        const char *name, *values;
    } known[] = {
        {"tier", "dev automation gpu"},
        {"os", "al2023 ubuntu-22.04 ubuntu-24.04"},
        {"output", "text json"},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(o->name, known[i].name) == 0)
            return known[i].values;
    return NULL;
}

typedef void (*opt_fn)(void *ctx, const gm_command *cmd, const gm_opt *o);

/* Every visible option of cmd (NULL: the global ones), in table order. */
static void each_opt(const gm_command *cmd, opt_fn fn, void *ctx)
{
    const gm_optgroup *groups[5] = {NULL};
    if (cmd)
        memcpy(groups, cmd->groups, sizeof cmd->groups);
    else
        groups[0] = &gm_cli_global_group;
    for (size_t g = 0; g < 5 && groups[g]; g++)
        for (size_t i = 0; i < groups[g]->n; i++)
            if (!(groups[g]->opts[i].flags & GM_OPT_HIDDEN))
                fn(ctx, cmd, &groups[g]->opts[i]);
}

/* ---- bash ------------------------------------------------------------------------ */

static void bash_word(void *ctx, const gm_command *cmd, const gm_opt *o)
{
    (void)cmd;
    printf("%s--%s", *(int *)ctx ? " " : "", o->name);
    *(int *)ctx = 1;
}

static void bash_value(void *ctx, const gm_command *cmd, const gm_opt *o)
{
    (void)ctx;
    (void)cmd;
    const char *v = option_values(o);
    if (v)
        printf("        --%s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return ;;\n", o->name,
               v);
    else if (o->arg)
        printf("        --%s) return ;;\n", o->name);
}

static void print_bash(void)
{
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    printf("# bash completion for geusemaker (generated from its option tables)\n"
           "_geusemaker() {\n"
           "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
           "    local cmd=\"\" i\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        case \"${COMP_WORDS[i]}\" in -*) ;; *) cmd=\"${COMP_WORDS[i]}\"; break ;; "
           "esac\n"
           "    done\n"
           "    case \"$prev\" in\n");
    for (size_t c = 0; c < n; c++)
        each_opt(cmds[c], bash_value, NULL);
    each_opt(NULL, bash_value, NULL);
    printf("    esac\n"
           "    local global=\"");
    int first = 0;
    each_opt(NULL, bash_word, &first);
    printf("\"\n    case \"$cmd\" in\n        \"\") COMPREPLY=($(compgen -W \"");
    for (size_t c = 0, k = 0; c < n; c++)
        if (!cmds[c]->hidden)
            printf("%s%s", k++ ? " " : "", cmds[c]->name);
    printf(" help --version $global\" -- \"$cur\")) ;;\n");
    for (size_t c = 0; c < n; c++) {
        first = 0;
        printf("        %s) COMPREPLY=($(compgen -W \"", cmds[c]->name);
        if (cmds[c]->pos_words)
            printf("%s ", cmds[c]->pos_words);
        each_opt(cmds[c], bash_word, &first);
        printf(" $global\" -- \"$cur\")) ;;\n");
    }
    printf("    esac\n}\ncomplete -F _geusemaker geusemaker\n");
}

/* ---- zsh and fish ------------------------------------------------------------------ */

/* Help text safe inside single quotes and brackets. */
static void print_clean(const char *s)
{
    for (; *s; s++)
        putchar(*s == '\'' || *s == '[' || *s == ']' || *s == ':' ? ' ' : *s);
}

static void zsh_opt(void *ctx, const gm_command *cmd, const gm_opt *o)
{
    (void)ctx;
    (void)cmd;
    printf("        '--%s[", o->name);
    print_clean(o->help);
    printf("]");
    const char *v = option_values(o);
    if (v)
        printf(":%s:(%s)", o->arg, v);
    else if (o->arg)
        printf(":%s: ", o->arg);
    printf("' \\\n");
}

static void print_zsh(void)
{
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    printf("#compdef geusemaker\n# zsh completion for geusemaker (generated from its option "
           "tables)\n_geusemaker() {\n    local -a commands\n    commands=(\n");
    for (size_t c = 0; c < n; c++)
        if (!cmds[c]->hidden) {
            printf("        '%s:", cmds[c]->name);
            print_clean(cmds[c]->summary);
            printf("'\n");
        }
    printf("    )\n    if (( CURRENT == 2 )); then\n        _describe command commands\n"
           "        return\n    fi\n    case \"${words[2]}\" in\n");
    for (size_t c = 0; c < n; c++) {
        printf("    %s) _arguments \\\n", cmds[c]->name);
        each_opt(cmds[c], zsh_opt, NULL);
        each_opt(NULL, zsh_opt, NULL);
        if (cmds[c]->pos_words)
            printf("        '1:action:(%s)' ;;\n", cmds[c]->pos_words);
        else
            printf("        '*: :_files' ;;\n");
    }
    printf("    esac\n}\n_geusemaker \"$@\"\n");
}

static void fish_opt(void *ctx, const gm_command *cmd, const gm_opt *o)
{
    (void)ctx;
    printf("complete -c geusemaker");
    if (cmd)
        printf(" -n '__fish_seen_subcommand_from %s'", cmd->name);
    printf(" -l %s", o->name);
    if (o->short_name)
        printf(" -s %c", o->short_name);
    const char *v = option_values(o);
    if (v)
        printf(" -x -a '%s'", v);
    else if (o->arg)
        printf(" -r");
    printf(" -d '");
    print_clean(o->help);
    printf("'\n");
}

static void print_fish(void)
{
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    printf("# fish completion for geusemaker (generated from its option tables)\n"
           "complete -c geusemaker -f\n");
    for (size_t c = 0; c < n; c++) {
        if (cmds[c]->hidden)
            continue;
        printf("complete -c geusemaker -n __fish_use_subcommand -a %s -d '", cmds[c]->name);
        print_clean(cmds[c]->summary);
        printf("'\n");
        if (cmds[c]->pos_words)
            printf("complete -c geusemaker -n '__fish_seen_subcommand_from %s' -a '%s'\n",
                   cmds[c]->name, cmds[c]->pos_words);
        each_opt(cmds[c], fish_opt, NULL);
    }
    each_opt(NULL, fish_opt, NULL);
}

static int cmd_completion(gm_cli *cli, const gm_args *args)
{
    const char *shell = args->pos[0];
    if (strcmp(shell, "bash") == 0)
        print_bash();
    else if (strcmp(shell, "zsh") == 0)
        print_zsh();
    else if (strcmp(shell, "fish") == 0)
        print_fish();
    else
        return gm_cli_usage_error(cli, "unknown shell '%s': expected bash, zsh or fish", shell);
    return GM_EXIT_OK;
}

/* ---- the man page ---------------------------------------------------------------------- */

/* Text with roff's special characters escaped. */
static void roff(const char *s)
{
    bool line_start = true;
    for (; *s; s++) {
        if (line_start && (*s == '.' || *s == '\''))
            fputs("\\&", stdout);
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
        line_start = *s == '\n';
    }
}

static void man_opt(void *ctx, const gm_command *cmd, const gm_opt *o)
{
    (void)ctx;
    (void)cmd;
    printf(".TP\n");
    if (o->short_name)
        printf("\\fB\\-%c\\fR, ", o->short_name);
    printf("\\fB\\-\\-");
    roff(o->name);
    printf("\\fR");
    if (o->arg) {
        printf(" \\fI");
        roff(o->arg);
        printf("\\fR");
    }
    printf("\n");
    roff(o->help);
    if (o->dflt) {
        printf(" (default: ");
        roff(o->dflt);
        printf(")");
    }
    if (o->flags & GM_OPT_REPEAT)
        printf("; repeatable");
    printf("\n");
}

static int cmd_manpage(gm_cli *cli, const gm_args *args)
{
    (void)cli;
    (void)args;
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    printf(".TH GEUSEMAKER 1 \"\" \"geusemaker %s\" \"User Commands\"\n"
           ".SH NAME\ngeusemaker \\- deploy and run a private AI stack on AWS\n"
           ".SH SYNOPSIS\n\\fBgeusemaker\\fR [\\fIoptions\\fR] \\fIcommand\\fR "
           "[\\fIoptions\\fR]\n.SH DESCRIPTION\n"
           "Deploys n8n, Ollama, Qdrant, Crawl4AI and PostgreSQL under Docker Compose on AWS "
           "and manages them: status, health, cost, destroy.\n"
           ".SH OPTIONS FOR EVERY COMMAND\n",
           GM_VERSION);
    each_opt(NULL, man_opt, NULL);
    printf(".SH COMMANDS\n");
    for (size_t c = 0; c < n; c++) {
        if (cmds[c]->hidden)
            continue;
        printf(".SS %s\n\\fBgeusemaker ", cmds[c]->name);
        roff(cmds[c]->synopsis);
        printf("\\fR\n.PP\n");
        roff(cmds[c]->summary);
        printf("\n");
        if (cmds[c]->notes) {
            printf(".PP\n");
            roff(cmds[c]->notes);
            printf("\n");
        }
        each_opt(cmds[c], man_opt, NULL);
    }
    printf(".SH EXIT STATUS\n0 success; 1 the operation failed; 2 bad input, nothing was done; "
           "3 the deployment is locked; 4 credentials missing or rejected; 5 (status) the "
           "deployment is not healthy: degraded, failed or unfinished; 130/143 interrupted "
           "by SIGINT/SIGTERM, the record saved.\n"
           ".SH FILES\n\\fI$GEUSEMAKER_HOME\\fR (default \\fI~/.geusemaker\\fR): records, logs, "
           "\\fIconfig.yaml\\fR; \\fI./geusemaker.yaml\\fR: project settings.\n");
    return GM_EXIT_OK;
}
