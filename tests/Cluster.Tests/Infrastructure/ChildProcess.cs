using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// A process started by a test: its stdout and stderr go to a log file (for diagnostics, see
/// <see cref="Tail"/>), and it is only ever signalled by its own PID. Whatever a test does, the
/// process is killed when it is disposed, and at the latest when the test run exits.
/// </summary>
public abstract class ChildProcess : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<int, Process> s_live = new();
    private readonly object _logLock = new();
    private readonly List<(string Text, TaskCompletionSource Seen)> _watchers = [];
    private StreamWriter? _log;
    private Process? _process;

    static ChildProcess()
    {
        // Safety net for a test run that ends without disposing (a crash, a hang timeout).
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var process in s_live.Values)
            {
                try
                {
                    process.Kill();
                }
                catch (InvalidOperationException)
                {
                    // Already gone.
                }
            }
        };
    }

    protected ChildProcess(string name, string logDirectory)
    {
        Name = name;
        Directory.CreateDirectory(logDirectory);
        LogPath = Path.Combine(logDirectory, name + ".log");
    }

    public string Name { get; }

    public string LogPath { get; }

    public int Pid { get; private set; }

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>The exit code once the process has exited; null while it runs.</summary>
    public int? ExitCode => _process is { HasExited: true } process ? process.ExitCode : null;

    protected void Start(string fileName, IReadOnlyList<string> arguments, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        _log = new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => WriteLine(e.Data);
        process.ErrorDataReceived += (_, e) => WriteLine(e.Data is null ? null : "[stderr] " + e.Data);
        process.Start();
        _process = process;
        Pid = process.Id;
        s_live[Pid] = process;
        WriteLine($"# {DateTime.UtcNow:HH:mm:ss.fff} started pid {Pid}: {fileName} {string.Join(' ', arguments)}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The last lines of the process's output, for failure messages.</summary>
    public string Tail(int lines = 40)
    {
        var all = ReadLog().Split('\n');
        var tail = string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        return $"--- {Name} (pid {Pid}, {(HasExited ? "exited" : "running")}) {LogPath}, last {lines} lines ---\n{tail}";
    }

    /// <summary>Everything the process wrote so far.</summary>
    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (IOException ex)
        {
            return $"(no log: {ex.Message})";
        }
    }

    /// <summary>Completes when a line of the process's output contains <paramref name="text"/> (lines already written count).</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_logLock)
        {
            _watchers.Add((text, seen));
        }

        if (ReadLog().Contains(text, StringComparison.Ordinal))
        {
            seen.TrySetResult();
        }

        try
        {
            await seen.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Name} did not print \"{text}\" within {timeout}.\n{Tail()}");
        }
    }

    /// <summary>SIGKILL: no chance to clean up, as when a machine dies.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            WriteLine($"# {DateTime.UtcNow:HH:mm:ss.fff} test sends SIGKILL");
            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }
        }
    }

    /// <summary>SIGTERM (a graceful stop), then SIGKILL if the process is still there after <paramref name="grace"/>.</summary>
    public async Task TerminateAsync(TimeSpan grace)
    {
        if (HasExited)
        {
            return;
        }

        await SignalAsync("TERM");
        if (!await WaitForExitAsync(grace))
        {
            Kill();
            await WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>SIGSTOP: the process freezes (its sockets stay open but nothing answers).</summary>
    public Task PauseAsync() => SignalAsync("STOP");

    /// <summary>SIGCONT after <see cref="PauseAsync"/>.</summary>
    public Task ResumeAsync() => SignalAsync("CONT");

    public async Task SignalAsync(string signal)
    {
        if (HasExited)
        {
            throw new InvalidOperationException($"{Name} (pid {Pid}) has exited; cannot send SIG{signal}.");
        }

        WriteLine($"# {DateTime.UtcNow:HH:mm:ss.fff} test sends SIG{signal}");
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"kill -s {signal} {Pid.ToString(CultureInfo.InvariantCulture)}");
        using var kill = Process.Start(info)!;
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -s {signal} {Pid} failed with exit code {kill.ExitCode}.");
        }
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        if (_process is null)
        {
            return true;
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            Kill();
            await WaitForExitAsync(TimeSpan.FromSeconds(10));
            s_live.TryRemove(Pid, out _);
            process.Dispose();
            _process = null;
        }

        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }

        GC.SuppressFinalize(this);
    }

    protected void WriteLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        List<TaskCompletionSource>? matched = null;
        lock (_logLock)
        {
            _log?.WriteLine(line);
            for (var i = _watchers.Count - 1; i >= 0; i--)
            {
                if (line.Contains(_watchers[i].Text, StringComparison.Ordinal))
                {
                    (matched ??= []).Add(_watchers[i].Seen);
                    _watchers.RemoveAt(i);
                }
            }
        }

        matched?.ForEach(seen => seen.TrySetResult());
    }
}
