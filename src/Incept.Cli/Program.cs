using Incept.Cli;

return InceptCli.Run(args);
