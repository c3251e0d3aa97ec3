using Incept.Cli;

// The compute-heavy commands run in a second process with malloc using huge pages (see HugePages).
return HugePages.Relaunch(args) ?? InceptCli.Run(args);
