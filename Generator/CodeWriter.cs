using System;
using System.Text;

namespace SharedEntities.Generator;

/// <summary>
/// A small indented text writer for generated C#: four spaces per level, <c>\n</c> line endings whatever the host
/// and whatever the line endings of the raw string literals it is given (generated files must be identical on every
/// machine). Blocks are disposable, so the emitter's nesting is the output's nesting.
/// </summary>
internal sealed class CodeWriter
{
    private const string IndentUnit = "    ";

    private readonly StringBuilder _builder = new();
    private int _level;
    private bool _blockJustOpened = true;

    /// <summary>
    /// Writes text and ends the line. A multi-line text (a raw string literal) is written line by line, each at the
    /// current indentation; an empty line has no indentation.
    /// </summary>
    public void WriteLine(string text = "")
    {
        int start = 0;
        while (true)
        {
            int end = text.IndexOf('\n', start);
            int length = (end < 0 ? text.Length : end) - start;
            if (length > 0 && text[start + length - 1] == '\r')
            {
                length--;
            }

            if (length > 0)
            {
                for (int i = 0; i < _level; i++)
                {
                    _builder.Append(IndentUnit);
                }

                _builder.Append(text, start, length);
            }

            _builder.Append('\n');
            if (end < 0)
            {
                break;
            }

            start = end + 1;
        }

        _blockJustOpened = false;
    }

    /// <summary>Starts a member: a blank line before it, unless it is the first of its block.</summary>
    public void StartMember()
    {
        if (!_blockJustOpened)
        {
            WriteLine();
        }

        _blockJustOpened = false;
    }

    /// <summary>
    /// Writes <paramref name="header"/>, then <c>{</c>, and indents until the returned block is disposed, which
    /// unindents and writes <paramref name="close"/> (<c>}</c>, or e.g. <c>});</c>).
    /// </summary>
    public Scope Block(string header, string close = "}")
    {
        WriteLine(header);
        WriteLine("{");
        _level++;
        _blockJustOpened = true;
        return new Scope(this, close);
    }

    /// <summary>Indents one level until the returned scope is disposed (continuation lines of an expression).</summary>
    public Scope Indent()
    {
        _level++;
        return new Scope(this, close: null);
    }

    public override string ToString() => _builder.ToString();

    private void Close(string? close)
    {
        if (_level == 0)
        {
            throw new InvalidOperationException("No block is open.");
        }

        _level--;
        if (close is not null)
        {
            WriteLine(close);
        }
    }

    /// <summary>An open block or indentation of a <see cref="CodeWriter"/>; disposing it closes it.</summary>
    public readonly struct Scope(CodeWriter writer, string? close) : IDisposable
    {
        public void Dispose() => writer.Close(close);
    }
}
