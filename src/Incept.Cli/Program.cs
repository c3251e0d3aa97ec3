using Incept.Cli;

// The compute-heavy commands restart themselves with a faster C allocator (see FastMalloc); this returns when not.
FastMalloc.Relaunch(args);
return InceptCli.Run(args);
