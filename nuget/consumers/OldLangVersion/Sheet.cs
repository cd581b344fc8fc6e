using SharedEntities;

namespace OldLangVersion;

[SharedEntity]
public partial class Sheet
{
    public int Id { get; set; }

    public partial string Title { get; set; }
}
