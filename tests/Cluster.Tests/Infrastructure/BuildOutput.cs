using System.Reflection;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// Where the processes under test are: the repository root (the folder holding Broker.sln above
/// this test assembly) and the silo and front-end DLLs built in the same configuration.
/// </summary>
public static class BuildOutput
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string RepoRoot => s_root.Value;

    /// <summary>The configuration this test assembly was built in (Release under scripts/test.sh).</summary>
    public static string Configuration { get; } =
        typeof(BuildOutput).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "BuildConfiguration")?.Value ?? "Release";

    public static string SiloDll => Dll("src/Silo", "Broker.Silo.dll");

    public static string FrontendDll => Dll("src/WsFrontend", "Broker.WsFrontend.dll");

    /// <summary>The sample application silo (samples/Bot).</summary>
    public static string BotDll => Dll("samples/Bot", "Broker.Samples.Bot.dll");

    public static string NginxTemplate => Path.Combine(RepoRoot, "scripts", "nginx.conf.template");

    /// <summary>A file of the build output of a project, by its folder under the repository root.</summary>
    private static string Dll(string projectFolder, string file)
    {
        var path = Path.Combine(RepoRoot, projectFolder, "bin", Configuration, "net10.0", file);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"{path} is missing: build the solution in {Configuration} first (dotnet build Broker.sln -c {Configuration}).", path);
        }

        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Broker.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The full path of a program on PATH or in the usual Debian folders (nginx lives in /usr/sbin).</summary>
    public static string Program(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]);
        foreach (var dir in dirs)
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException($"{name} is not installed (apt-get install -y redis-server nginx).", name);
    }
}
