namespace SharedEntities.Generator.Tests;

/// <summary>The writer the emitter relies on for layout: indentation, line endings, blocks and member spacing.</summary>
public sealed class CodeWriterTests
{
    [Fact]
    public void Multi_line_text_is_indented_line_by_line_with_LF_endings()
    {
        CodeWriter writer = new();
        using (writer.Block("class C"))
        {
            // A raw string literal in a file checked out with CRLF endings must give the same output.
            writer.WriteLine("int A;\r\n\r\nint B;");
        }

        Assert.Equal("class C\n{\n    int A;\n\n    int B;\n}\n", writer.ToString());
    }

    [Fact]
    public void Blocks_nest_and_close_with_their_own_text()
    {
        CodeWriter writer = new();
        writer.WriteLine("M(");
        using (writer.Indent())
        using (writer.Block("new int[]", close: "});"))
        {
            writer.WriteLine("1,");
        }

        Assert.Equal("M(\n    new int[]\n    {\n        1,\n    });\n", writer.ToString());
    }

    [Fact]
    public void Members_are_separated_by_one_blank_line_none_before_the_first()
    {
        CodeWriter writer = new();
        using (writer.Block("class C"))
        {
            writer.StartMember();
            writer.WriteLine("int A;");
            writer.StartMember();
            writer.WriteLine("int B;");
        }

        Assert.Equal("class C\n{\n    int A;\n\n    int B;\n}\n", writer.ToString());
    }

    [Fact]
    public void Closing_more_than_was_opened_throws()
    {
        CodeWriter writer = new();
        CodeWriter.Scope block = writer.Block("class C");
        block.Dispose();
        Assert.Throws<InvalidOperationException>(() => block.Dispose());
    }
}
