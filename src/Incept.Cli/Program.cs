using Incept.Cli;

// The compute-heavy commands restart themselves with malloc using huge pages (see HugePages); this returns when not.
HugePages.Relaunch(args);
return InceptCli.Run(args);
