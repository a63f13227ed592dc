// berth's entry point: one image, several subcommands. Each subcommand imports its modules
// when it runs, so a process loads only what it uses (the operator never loads the S3 client of
// the retention run, the token service never loads the controllers).

const version = 'berth 0.1.0';

type Command = { summary: string; run(argv: string[]): Promise<number> };

/** The subcommand table. Each command takes its own arguments and returns the exit code. */
const commands: Record<string, Command> = {
  operator: {
    summary: 'run the operator (controllers, leader election, health and metrics)',
    run: async (argv) => {
      const { parseConfig, usage: operatorUsage } = await import('./config/config.ts');
      if (argv.includes('--help') || argv.includes('-h')) {
        console.log(
          `usage: berth operator [flags]\n\nflags (each also read from its environment variable):\n${operatorUsage()}`,
        );
        return 0;
      }
      const parsed = parseConfig(argv);
      if (!parsed.ok) {
        console.error(`berth operator: ${parsed.error.message}`);
        return 2;
      }
      const [{ runOperator }, { registerControllers }] = await Promise.all([
        import('./run-operator.ts'),
        import('./controllers.ts'),
      ]);
      return runOperator(parsed.config, registerControllers);
    },
  },
  version: {
    summary: 'print the version',
    run: async () => {
      console.log(version);
      return 0;
    },
  },
  'token-service': {
    summary: 'run the registry token service (Docker/OCI token authentication)',
    run: async (argv) => (await import('./token/command.ts')).tokenServiceCommand(argv),
  },
  'gc-run': {
    summary: 'a step of a garbage collection (a Job): verify',
    run: async (argv) => (await import('./gc/run/command.ts')).gcRunCommand(argv),
  },
  'retention-run': {
    summary: 'one retention run of a RetentionPolicy (a Job)',
    run: async (argv) => (await import('./retention/run/command.ts')).retentionRunCommand(argv),
  },
  'node-agent': {
    summary: 'the node agent (a DaemonSet): nodes trust and reach a registry',
    run: async (argv) => (await import('./nodeagent/command.ts')).nodeAgentCommand(argv),
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(15)} ${c.summary}`);
  return `usage: berth <command> [flags]\n\ncommands:\n${lines.join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`berth: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

process.exitCode = await main(process.argv.slice(2));
