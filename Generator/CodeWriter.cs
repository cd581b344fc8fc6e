using System;
using System.Text;

namespace SharedEntities.Generator;

/// <summary>
/// A small indented text writer for generated C#: four spaces per level, <c>\n</c> line endings whatever the host
/// (generated files must be identical on every machine).
/// </summary>
internal sealed class CodeWriter
{
    private const string IndentUnit = "    ";

    private readonly StringBuilder _builder = new();
    private int _level;
    private bool _atLineStart = true;

    /// <summary>Writes text on the current line, indenting it first if the line is new.</summary>
    public CodeWriter Write(string text)
    {
        if (text.Length == 0)
        {
            return this;
        }

        if (_atLineStart)
        {
            for (int i = 0; i < _level; i++)
            {
                _builder.Append(IndentUnit);
            }

            _atLineStart = false;
        }

        _builder.Append(text);
        return this;
    }

    /// <summary>Writes text and ends the line (an empty line has no indentation).</summary>
    public CodeWriter WriteLine(string text = "")
    {
        Write(text);
        _builder.Append('\n');
        _atLineStart = true;
        return this;
    }

    /// <summary>Writes <c>{</c> and indents.</summary>
    public void OpenBlock()
    {
        WriteLine("{");
        _level++;
    }

    /// <summary>Unindents and writes <c>}</c> followed by <paramref name="suffix"/> (e.g. <c>;</c>).</summary>
    public void CloseBlock(string suffix = "")
    {
        if (_level == 0)
        {
            throw new InvalidOperationException("No block is open.");
        }

        _level--;
        WriteLine("}" + suffix);
    }

    public override string ToString() => _builder.ToString();
}
