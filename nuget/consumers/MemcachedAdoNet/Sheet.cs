using SharedEntities;

namespace MemcachedAdoNet;

[SharedEntity]
public partial class Sheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }
}
